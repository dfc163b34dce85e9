//! Request extractors that answer in the API's error shape: [`Body`] (JSON with the failing
//! field's path), [`Path`] and [`Query`] (naming the bad parameter) and [`Caller`] (the
//! bearer token's role). Handlers use these instead of axum's, whose rejections are plain text.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::app::AppState;
use crate::store::records::{Role, TokenRecord};

/// The largest JSON body accepted, in bytes.
pub const MAX_JSON_BYTES: usize = 64 << 10;

/// A JSON body. Unknown fields, wrong types and oversized bodies are 4xx errors naming the
/// field (as a path like `auth.fields`).
pub struct Body<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req, state, &["application/json"]).await?;
        decode(&bytes).map(Body)
    }
}

/// A JSON merge patch body (RFC 7396): `application/merge-patch+json`, or `application/json`.
/// It must be JSON; what it may hold is for the resource to say.
pub struct MergePatch(pub serde_json::Value);

impl FromRequest<AppState> for MergePatch {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let types = ["application/merge-patch+json", "application/json"];
        let bytes = read_body(req, state, &types).await?;
        decode(&bytes).map(MergePatch)
    }
}

/// The body's bytes, when its media type is one of `types` and it is within
/// [`MAX_JSON_BYTES`].
async fn read_body(
    req: Request,
    state: &AppState,
    types: &[&str],
) -> Result<axum::body::Bytes, ApiError> {
    if !has_media_type(req.headers(), types) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            format!("send the body as {}", types.join(" or ")),
        ));
    }
    axum::body::Bytes::from_request(req, state)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                format!("the body is larger than {MAX_JSON_BYTES} bytes"),
            )
        })
}

/// JSON `bytes` read as a `T`: not JSON, unknown fields and wrong types are 400s naming the
/// field (as a path like `auth.fields`).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if let Some((path, position)) = nul_at(bytes) {
        let message = format!("character {position} is a NUL (\\u0000), which no field takes");
        return Err(invalid_at(&path, message));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let de = crate::objects::ObjectOnly(de);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let e = e.into_inner();
        if e.is_syntax() || e.is_eof() {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid",
                format!("the body is not valid JSON: {e}"),
            );
        }
        let message = strip_position(&e.to_string());
        if path == "." && message.starts_with("invalid ") {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid",
                "the body must be a JSON object",
            );
        }
        invalid_at(&path, message)
    })
}

/// Where the JSON `bytes` hold a NUL in a string or a key (as serde_path_to_error names a
/// path, `.` for the top, and the character's position from 1), if they do: no field has a
/// use for one, and PostgreSQL refuses it in text. Only bodies that spell `\u0000` are parsed
/// twice.
fn nul_at(bytes: &[u8]) -> Option<(String, usize)> {
    fn position(s: &str) -> Option<usize> {
        s.chars().position(|c| c == '\0').map(|i| i + 1)
    }
    fn walk(value: &serde_json::Value, path: &str) -> Option<(String, usize)> {
        let join = |name: &str| match path {
            "." => name.to_string(),
            _ => format!("{path}.{name}"),
        };
        match value {
            serde_json::Value::String(s) => position(s).map(|at| (path.to_string(), at)),
            serde_json::Value::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, item)| walk(item, &format!("{path}[{i}]"))),
            serde_json::Value::Object(fields) => fields.iter().find_map(|(name, item)| {
                if let Some(at) = position(name) {
                    return Some((path.to_string(), at));
                }
                walk(item, &join(name))
            }),
            _ => None,
        }
    }
    if !bytes.windows(6).any(|w| w == b"\\u0000") {
        return None;
    }
    walk(&serde_json::from_slice(bytes).ok()?, ".")
}

/// True when the `Content-Type` is exactly one of `types` (parameters such as `charset` aside,
/// case-insensitive): `application/jsonx` is not `application/json`.
pub fn has_media_type(headers: &axum::http::HeaderMap, types: &[&str]) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim())
        .is_some_and(|media| types.iter().any(|t| media.eq_ignore_ascii_case(t)))
}

/// A 400 for a deserialization `message` at `path` (serde_path_to_error's, `.` for the top),
/// naming the field at fault: the path itself, unknown fields included (`auth.fields.pin`),
/// or the missing field under it (`auth.type`).
fn invalid_at(path: &str, message: String) -> ApiError {
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(name, _)| name);
    let field = match (path, missing) {
        (".", None) => None,
        (".", Some(name)) => Some(name.to_string()),
        (path, Some(name)) => Some(format!("{path}.{name}")),
        (path, None) => Some(path.to_string()),
    };
    ApiError {
        status: StatusCode::BAD_REQUEST,
        code: "invalid",
        message: super::wording::for_a_person(field.as_deref(), &message),
        field,
        more: Vec::new(),
        retry_after: None,
    }
}

fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// Path parameters; one that does not decode (invalid UTF-8, wrong type) is a 400 naming it.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        use axum::extract::path::ErrorKind;
        use axum::extract::rejection::PathRejection;
        // No id holds one (and PostgreSQL refuses a NUL in text): nothing by that id, found
        // without a query.
        if let Ok(raw) = axum::extract::RawPathParams::from_request_parts(parts, state).await
            && let Some((key, _)) = raw.iter().find(|(_, v)| v.chars().any(char::is_control))
        {
            return Err(ApiError {
                status: StatusCode::NOT_FOUND,
                code: "not-found",
                message: format!("no such {key}: the path parameter holds a control character"),
                field: Some(key.to_string()),
                more: Vec::new(),
                retry_after: None,
            });
        }
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                let field = match e.kind() {
                    ErrorKind::InvalidUtf8InPathParam { key }
                    | ErrorKind::ParseErrorAtKey { key, .. }
                    | ErrorKind::DeserializeError { key, .. } => Some(key.clone()),
                    _ => None,
                };
                let message = e.body_text();
                let message = message.strip_prefix("Invalid URL: ").unwrap_or(&message);
                Err(ApiError {
                    status: StatusCode::BAD_REQUEST,
                    code: "invalid",
                    message: format!("a path parameter is invalid: {message}"),
                    field,
                    more: Vec::new(),
                    retry_after: None,
                })
            }
            // Routes and handlers disagree on the parameters: a bug of ours.
            Err(other) => Err(ApiError::internal(other.body_text())),
        }
    }
}

/// A query string; an unknown or malformed parameter is a 400 naming it.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned> FromRequestParts<AppState> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|e| {
                let path = e.path().to_string();
                invalid_at(&path, e.into_inner().to_string())
            })
    }
}

/// Who is calling, from `Authorization: Bearer <token>`.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The token's record.
    pub token: TokenRecord,
}

impl Caller {
    /// 403 unless the caller is an admin.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self.token.role {
            Role::Admin => Ok(()),
            Role::Member => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this needs an admin token",
            )),
        }
    }

    /// True for admins.
    pub fn is_admin(&self) -> bool {
        self.token.role == Role::Admin
    }

    /// 403 unless the caller may work in `project`.
    pub fn require_project(&self, project: &str) -> Result<(), ApiError> {
        if self.is_admin() || self.token.projects.iter().any(|p| p == project) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("this token may not use project {project:?}"),
            ))
        }
    }

    /// A short description for the audit log.
    pub fn who(&self) -> String {
        format!("{} ({})", self.token.name, self.token.id)
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let unauthorized =
            |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m.to_string());
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("send Authorization: Bearer <token>"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthorized("send Authorization: Bearer <token>"))?;
        crate::tokens::find(state, token)
            .await?
            .map(|token| Caller { token })
            .ok_or_else(|| unauthorized("unknown or revoked token"))
    }
}
