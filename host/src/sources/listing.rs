//! What a list of sources (`GET /sources`) holds: the query (search, filters, sort, page)
//! checked into a [`ListRequest`], and the rules that pick, order and cut the sources
//! ([`list`]).
//!
//! Without `limit`, `page` or `cursor` the answer stays the plain list existing clients read;
//! with any, it is a [`Paged`](crate::paging::Paged) envelope carrying the total, the next page
//! and the next cursor. Every parameter that does not parse is a [`ListError`] naming it.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::app::AppState;
use crate::field::FieldError;
use crate::metrics::Health;
use crate::paging::{self, Listed, PageRequest};
use crate::store::records::SourceRecord;
use crate::store::{Read, SOURCES, StoreError};

/// Why a list of sources could not be given.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// A query parameter is wrong (the error names it).
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// A member filtered or sorted by health (the parameter), which only admins see.
    #[error("only admins see the sources' health")]
    HealthIsAdmins(&'static str),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who asks for a list of sources.
#[derive(Clone, Copy, Debug)]
pub enum Viewer<'a> {
    /// An admin: every source, each with its health.
    Admin,
    /// A member: the enabled sources assigned to one of these projects.
    Member(&'a [String]),
}

/// One source of a list: its id, its record and, in an admin's list, its health.
#[derive(Debug)]
pub struct Listing {
    /// Id.
    pub id: String,
    /// The stored configuration.
    pub record: SourceRecord,
    /// How its recent calls went (admins only).
    pub health: Option<Health>,
}

/// The sources `viewer` may see that `request` keeps, in its order: all of them, or the
/// page it asks for. A provider filter naming neither a loaded plugin nor a stored source's
/// provider is a [`ListError::Invalid`] naming `provider`.
pub async fn list(
    state: &AppState,
    request: &ListRequest,
    viewer: Viewer<'_>,
) -> Result<Listed<Listing>, ListError> {
    let all: Vec<(String, SourceRecord)> = state.store.read(|r| r.all(SOURCES)).await?;
    let loaded = |p: &str| state.plugins.get(p).is_ok();
    request.check_provider(loaded, all.iter().map(|(_, s)| s))?;
    let items: Vec<Listing> = match viewer {
        Viewer::Admin => all
            .into_iter()
            .map(|(id, record)| Listing {
                health: Some(state.metrics.health(&id, state.plugins.headroom(&id))),
                id,
                record,
            })
            .filter(|l| request.keeps(&l.record, l.health.as_ref()))
            .collect(),
        Viewer::Member(projects) => all
            .into_iter()
            .filter(|(_, s)| s.enabled && request.keeps(s, None))
            .filter(|(_, s)| projects.iter().any(|p| s.projects.includes(p)))
            .map(|(id, record)| Listing {
                id,
                record,
                health: None,
            })
            .collect(),
    };
    Ok(request.cut(request.sort(items)))
}

/// The most sources one page holds.
pub const MAX_LIMIT: usize = 500;

/// The page size when `page` is given without `limit`.
pub const DEFAULT_LIMIT: usize = 50;

/// The longest search text accepted, in characters.
pub const MAX_SEARCH: usize = 200;

/// The health statuses `health=` accepts (those of [`Health::status`]).
pub const HEALTH_STATUSES: [&str; 5] = ["unknown", "ok", "degraded", "failing", "rate-limited"];

/// Query of `GET /sources`, as sent; [`ListQuery::check`] turns it into a [`ListRequest`].
#[derive(Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only sources usable in this project.
    pub project: Option<String>,
    /// Search text, matched (ignoring case) in the display name and the base URL.
    pub q: Option<String>,
    /// Only sources of this provider id.
    pub provider: Option<String>,
    /// `true` or `false`: only enabled, or only disabled sources.
    pub enabled: Option<String>,
    /// Only sources whose health has this status (admins only).
    pub health: Option<String>,
    /// The order: `name` (the default), `provider`, `base_url`, `enabled`, `health` (worst
    /// first; admins only), `created` or `updated` (oldest first); a leading `-` reverses it.
    pub sort: Option<String>,
    /// Sources per page (1 to [`MAX_LIMIT`]); asks for the paged answer.
    pub limit: Option<String>,
    /// Page number from 1; asks for the paged answer.
    pub page: Option<String>,
    /// The `next_cursor` of the previous page (with the same filters and sort); asks for the
    /// page after it.
    pub cursor: Option<String>,
}

/// What a sort orders by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortKey {
    /// Display name, ignoring case.
    #[default]
    Name,
    /// Provider id, then name.
    Provider,
    /// Base URL, then name.
    BaseUrl,
    /// Enabled first, then name.
    Enabled,
    /// Worst health first (failing, rate-limited, degraded, no calls yet, healthy), then name.
    Health,
    /// Creation time, then name.
    Created,
    /// Last change, then name.
    Updated,
}

/// A checked [`ListQuery`].
#[derive(Debug, Default)]
pub struct ListRequest {
    /// Only sources usable in this project.
    pub project: Option<String>,
    /// Lower-cased search text.
    pub search: Option<String>,
    /// Provider id.
    pub provider: Option<String>,
    /// Enabled or disabled only.
    pub enabled: Option<bool>,
    /// Health status.
    pub health: Option<&'static str>,
    /// Order and whether it is reversed.
    pub sort: (SortKey, bool),
    /// The page asked for, if one was.
    pub page: Option<PageRequest>,
}

impl ListQuery {
    /// Checks every parameter; the first bad one is an error naming it. `admin` says whether
    /// the caller may filter and sort by health.
    pub fn check(self, admin: bool) -> Result<ListRequest, ListError> {
        let search = nonempty(self.q).map(|q| q.to_lowercase());
        if search
            .as_ref()
            .is_some_and(|q| q.chars().count() > MAX_SEARCH)
        {
            return Err(FieldError::new(
                "q",
                format!("the search text is longer than {MAX_SEARCH} characters"),
            )
            .into());
        }
        let enabled = match nonempty(self.enabled).as_deref() {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(other) => {
                return Err(FieldError::new(
                    "enabled",
                    format!("enabled is true or false; got {other:?}"),
                )
                .into());
            }
        };
        let health = match nonempty(self.health) {
            None => None,
            Some(status) => Some(health_status(&status)?),
        };
        let sort = match nonempty(self.sort) {
            None => (SortKey::Name, false),
            Some(text) => sort_key(&text)?,
        };
        if !admin && (health.is_some() || sort.0 == SortKey::Health) {
            let field = if health.is_some() { "health" } else { "sort" };
            return Err(ListError::HealthIsAdmins(field));
        }
        let page =
            PageRequest::parse(self.limit, self.page, self.cursor, DEFAULT_LIMIT, MAX_LIMIT)?;
        Ok(ListRequest {
            project: nonempty(self.project),
            search,
            provider: nonempty(self.provider),
            enabled,
            health,
            sort,
            page,
        })
    }
}

impl ListRequest {
    /// True when `source` (with `health`, when the caller is an admin) passes every filter.
    pub fn keeps(&self, source: &SourceRecord, health: Option<&Health>) -> bool {
        self.project
            .as_ref()
            .is_none_or(|p| source.projects.includes(p))
            && self.provider.as_ref().is_none_or(|p| &source.provider == p)
            && self.enabled.is_none_or(|e| source.enabled == e)
            && self
                .health
                .is_none_or(|status| health.is_some_and(|h| h.status == status))
            && self.search.as_ref().is_none_or(|q| {
                source.display_name.to_lowercase().contains(q)
                    || source.base_url.to_lowercase().contains(q)
            })
    }

    /// `items` in the asked order; names, then ids, in ascending order, break ties.
    pub fn sort(&self, items: Vec<Listing>) -> Vec<Listing> {
        let mut keyed: Vec<(Vec<String>, Listing)> = items
            .into_iter()
            .map(|item| (self.position(&item), item))
            .collect();
        keyed.sort_by(|a, b| self.order(&a.0, &b.0));
        keyed.into_iter().map(|(_, item)| item).collect()
    }

    /// Where `item` stands in the asked order (what a cursor holds): the sort field, the
    /// lower-cased name and the id.
    fn position(&self, item: &Listing) -> Vec<String> {
        let (s, health) = (&item.record, item.health.as_ref());
        let name = s.display_name.to_lowercase();
        let first = match self.sort.0 {
            SortKey::Name => name.clone(),
            SortKey::Provider => s.provider.clone(),
            SortKey::BaseUrl => s.base_url.to_lowercase(),
            SortKey::Enabled => (!s.enabled as u8).to_string(),
            SortKey::Health => health_rank(health).to_string(),
            SortKey::Created => format!("{:020}", s.created_at),
            SortKey::Updated => format!("{:020}", s.updated_at),
        };
        vec![first, name, item.id.clone()]
    }

    /// The asked order of two [`ListRequest::position`]s: the sort field (reversed with a
    /// leading `-`), then the rest ascending.
    fn order(&self, a: &[String], b: &[String]) -> std::cmp::Ordering {
        let (first, rest) = (a.first().cmp(&b.first()), a.get(1..).cmp(&b.get(1..)));
        let first = if self.sort.1 { first.reverse() } else { first };
        first.then(rest)
    }

    /// An error naming `provider` when it is neither a loaded plugin (`loaded`) nor the
    /// provider of a stored source.
    pub fn check_provider<'a>(
        &self,
        loaded: impl Fn(&str) -> bool,
        mut stored: impl Iterator<Item = &'a SourceRecord>,
    ) -> Result<(), FieldError> {
        match &self.provider {
            Some(p) if !loaded(p) && !stored.any(|s| &s.provider == p) => Err(FieldError::new(
                "provider",
                format!("no provider has the id {p:?} (GET /providers lists them)"),
            )),
            _ => Ok(()),
        }
    }

    /// The asked page of `items` (already filtered and sorted), or all of them.
    pub fn cut(&self, items: Vec<Listing>) -> Listed<Listing> {
        let (key, order) = (
            |l: &Listing| self.position(l),
            |a: &[String], b: &[String]| self.order(a, b),
        );
        paging::cut_by(items, self.page.clone(), key, order)
    }
}

fn nonempty(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn health_status(text: &str) -> Result<&'static str, FieldError> {
    HEALTH_STATUSES
        .iter()
        .find(|s| **s == text)
        .copied()
        .ok_or_else(|| {
            FieldError::new(
                "health",
                format!(
                    "health is one of {}; got {text:?}",
                    HEALTH_STATUSES.join(", ")
                ),
            )
        })
}

fn sort_key(text: &str) -> Result<(SortKey, bool), FieldError> {
    let (name, reversed) = match text.strip_prefix('-') {
        Some(rest) => (rest, true),
        None => (text, false),
    };
    match SORT_KEYS.iter().find(|(n, _)| *n == name) {
        Some((_, key)) => Ok((*key, reversed)),
        None => Err(FieldError::new(
            "sort",
            format!(
                "sort is one of {} (a leading - reverses it, e.g. -updated); got {text:?}",
                SORT_KEYS.map(|(n, _)| n).join(", ")
            ),
        )),
    }
}

/// The orders `sort=` accepts, each also reversed with a leading `-`.
pub const SORT_KEYS: [(&str, SortKey); 7] = [
    ("name", SortKey::Name),
    ("provider", SortKey::Provider),
    ("base_url", SortKey::BaseUrl),
    ("enabled", SortKey::Enabled),
    ("health", SortKey::Health),
    ("created", SortKey::Created),
    ("updated", SortKey::Updated),
];

/// Worst first: failing, rate-limited, degraded, no calls yet, healthy.
fn health_rank(health: Option<&Health>) -> u8 {
    match health.map(|h| h.status) {
        Some("failing") => 0,
        Some("rate-limited") => 1,
        Some("degraded") => 2,
        Some("ok") => 4,
        _ => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Result<ListRequest, ListError> {
        let text = serde_urlencoded::to_string(pairs).unwrap();
        let q: ListQuery = serde_urlencoded::from_str(&text).unwrap();
        q.check(true)
    }

    #[test]
    fn bad_values_name_their_parameter() {
        for (name, value) in [
            ("enabled", "yes"),
            ("health", "green"),
            ("sort", "colour"),
            ("limit", "0"),
            ("limit", "501"),
            ("page", "0"),
            ("page", "two"),
            ("cursor", "not-a-cursor"),
        ] {
            let Err(ListError::Invalid(e)) = query(&[(name, value)]) else {
                panic!("{name}={value} is refused as a mistake in the query")
            };
            assert_eq!(e.field, name, "{name}={value}: {}", e.message);
            assert!(e.message.contains(value), "{}", e.message);
        }
    }

    #[test]
    fn members_may_not_filter_or_sort_by_health() {
        let q = ListQuery {
            sort: Some("health".into()),
            ..ListQuery::default()
        };
        assert!(matches!(
            q.check(false),
            Err(ListError::HealthIsAdmins("sort"))
        ));
    }
}
