//! Pages of a list: `limit`, `page` and `cursor` checked into a [`PageRequest`], and the
//! answer ([`Listed`]): the plain array when none is given (what existing clients read), else a
//! [`Paged`] envelope with the total, the next page and the next cursor. Every list of the API
//! pages this way ([`cut`], [`cut_by`]), each by its own sort key.
//!
//! A [`Cursor`] is the sort key of the last item a page held, opaque to clients (base64url of
//! a JSON array of strings). The next page starts after that key, so items added or removed
//! meanwhile never make an item that was there all along show twice or go missing.

use std::cmp::Ordering;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::field::FieldError;

/// The page size of a list when `page` or `cursor` is given without `limit`, unless the list
/// says otherwise.
pub const DEFAULT_LIMIT: usize = 50;

/// The most items one page of a list holds, unless the list says otherwise.
pub const MAX_LIMIT: usize = 500;

/// The longest cursor accepted, in characters (a sort key holds a few short strings).
const MAX_CURSOR: usize = 2048;

/// The paging parameters of a list that has no others, as sent.
#[derive(Default, Deserialize)]
pub struct PageQuery {
    /// Items per page (1 to [`MAX_LIMIT`]); asks for the paged answer.
    pub limit: Option<String>,
    /// Page number from 1; asks for the paged answer.
    pub page: Option<String>,
    /// The `next_cursor` of the previous page; asks for the page after it.
    pub cursor: Option<String>,
}

impl PageQuery {
    /// [`PageRequest::parse`] with the default bounds.
    pub fn check(self) -> Result<Option<PageRequest>, FieldError> {
        PageRequest::parse(self.limit, self.page, self.cursor, DEFAULT_LIMIT, MAX_LIMIT)
    }
}

/// Where a page starts: the sort key of the last item of the page before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor(pub Vec<String>);

impl Cursor {
    /// The opaque form given to clients as `next_cursor`.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&self.0).unwrap_or_default())
    }

    /// A cursor a client sent back, as parameter `field`; anything but a `next_cursor` of
    /// ours is an error naming it.
    pub fn decode(field: &str, text: &str) -> Result<Cursor, FieldError> {
        let bad = || {
            let shown: String = text.chars().take(40).collect();
            FieldError::new(
                field,
                format!(
                    "{field} is the next_cursor of a previous page, passed on as it was; got {shown:?}"
                ),
            )
        };
        if text.len() > MAX_CURSOR {
            return Err(bad());
        }
        let bytes = URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| bad())?;
        serde_json::from_slice::<Vec<String>>(&bytes)
            .ok()
            .filter(|key| !key.is_empty())
            .map(Cursor)
            .ok_or_else(bad)
    }
}

/// A page asked for: its number (from 1) or the cursor it starts after, and its size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRequest {
    /// Page number, from 1 (1 when a cursor is given).
    pub page: usize,
    /// Items per page.
    pub limit: usize,
    /// The cursor the page starts after, if one was given (instead of a page number).
    pub after: Option<Cursor>,
}

impl PageRequest {
    /// Checks the `limit` (1 to `max`), `page` (from 1) and `cursor` parameters; `None` when
    /// none is given, `default_limit` when `limit` is not. `page` and `cursor` together are
    /// refused. A bad value is a [`FieldError`] naming it.
    pub fn parse(
        limit: Option<String>,
        page: Option<String>,
        cursor: Option<String>,
        default_limit: usize,
        max: usize,
    ) -> Result<Option<PageRequest>, FieldError> {
        let limit = number("limit", limit, 1, max)?;
        let page = number("page", page, 1, usize::MAX)?;
        let after = match cursor.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
            None => None,
            Some(_) if page.is_some() => {
                return Err(FieldError::new(
                    "cursor",
                    "give either page or cursor, not both",
                ));
            }
            Some(text) => Some(Cursor::decode("cursor", text)?),
        };
        Ok(
            (limit.is_some() || page.is_some() || after.is_some()).then(|| PageRequest {
                page: page.unwrap_or(1),
                limit: limit.unwrap_or(default_limit),
                after,
            }),
        )
    }
}

/// The answer of a list: the plain array, or one page of it when a page was asked for.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "{T}List", transform = one_of)]
pub enum Listed<T> {
    /// Every matching item.
    All(Vec<T>),
    /// One page.
    Page(Paged<T>),
}

impl<T> Listed<T> {
    /// The same list, or page, with each item turned by `f` (e.g. into the view a caller sees).
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Listed<U> {
        match self {
            Listed::All(items) => Listed::All(items.into_iter().map(f).collect()),
            Listed::Page(page) => Listed::Page(Paged {
                items: page.items.into_iter().map(f).collect(),
                total: page.total,
                page: page.page,
                limit: page.limit,
                pages: page.pages,
                next_page: page.next_page,
                next_cursor: page.next_cursor,
            }),
        }
    }
}

/// The array and the page never both fit, so a list is `oneOf` them (schemars writes an
/// untagged enum as `anyOf`).
fn one_of(schema: &mut schemars::Schema) {
    if let Some(map) = schema.as_object_mut()
        && let Some(variants) = map.remove("anyOf")
    {
        map.insert("oneOf".into(), variants);
    }
}

/// One page of a list, with what a client needs to show and fetch the rest.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "{T}Page")]
pub struct Paged<T> {
    /// This page's items.
    pub items: Vec<T>,
    /// How many items match the filters, over all pages.
    pub total: usize,
    /// This page's number, from 1; null for a page asked by cursor.
    pub page: Option<usize>,
    /// The page size.
    pub limit: usize,
    /// How many pages there are (at least 1).
    pub pages: usize,
    /// The next page's number, or null on the last page (and for a page asked by cursor).
    pub next_page: Option<usize>,
    /// Pass as `cursor` for the page after this one; null on the last page.
    pub next_cursor: Option<String>,
}

/// The asked page of `items` (already filtered and in ascending order of `key`, the sort key
/// a cursor holds), or all of them.
pub fn cut<T>(
    items: Vec<T>,
    request: Option<PageRequest>,
    key: impl Fn(&T) -> Vec<String>,
) -> Listed<T> {
    cut_by(items, request, key, |a, b| a.cmp(b))
}

/// [`cut`] for a list in the order `order` gives its sort keys (e.g. a reversed sort).
pub fn cut_by<T>(
    items: Vec<T>,
    request: Option<PageRequest>,
    key: impl Fn(&T) -> Vec<String>,
    order: impl Fn(&[String], &[String]) -> Ordering,
) -> Listed<T> {
    let Some(PageRequest { page, limit, after }) = request else {
        return Listed::All(items);
    };
    let total = items.len();
    let pages = total.div_ceil(limit).max(1);
    let start = match &after {
        Some(Cursor(last)) => items.partition_point(|i| order(&key(i), last) != Ordering::Greater),
        None => (page - 1).saturating_mul(limit).min(total),
    };
    let end = start.saturating_add(limit).min(total);
    let next_cursor = (start < end && end < total).then(|| Cursor(key(&items[end - 1])).encode());
    let page = after.is_none().then_some(page);
    let items: Vec<T> = items.into_iter().skip(start).take(limit).collect();
    Listed::Page(Paged {
        items,
        total,
        page,
        limit,
        pages,
        next_page: page.filter(|p| *p < pages).map(|p| p + 1),
        next_cursor,
    })
}

/// A whole number parameter from `min` to `max`; empty counts as absent.
fn number(
    field: &str,
    text: Option<String>,
    min: usize,
    max: usize,
) -> Result<Option<usize>, FieldError> {
    let Some(text) = text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    match text.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        Ok(_) if max == usize::MAX => Err(FieldError::new(
            field,
            format!("{field} is a whole number from {min}; got {text:?}"),
        )),
        _ => Err(FieldError::new(
            field,
            format!("{field} is a whole number from {min} to {max}; got {text:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_is_asked_by_limit_or_page_only() {
        let parse = |l: Option<&str>, p: Option<&str>| {
            PageRequest::parse(l.map(Into::into), p.map(Into::into), None, 50, 500)
        };
        assert_eq!(parse(None, None).unwrap(), None);
        let page = |page, limit| {
            Some(PageRequest {
                page,
                limit,
                after: None,
            })
        };
        assert_eq!(parse(None, Some("3")).unwrap(), page(3, 50));
        assert_eq!(parse(Some("10"), None).unwrap(), page(1, 10));
        for (l, p, field) in [
            ("0", "1", "limit"),
            ("501", "1", "limit"),
            ("5", "0", "page"),
        ] {
            let e = parse(Some(l), Some(p)).unwrap_err();
            assert_eq!(e.field, field);
        }
    }

    #[test]
    fn a_page_past_the_end_is_empty_with_the_total() {
        let request = PageRequest {
            page: 9,
            limit: 2,
            after: None,
        };
        let Listed::Page(page) = cut(vec![1, 2, 3], Some(request), |n| vec![n.to_string()]) else {
            panic!("a page was asked for")
        };
        assert!(page.items.is_empty());
        assert_eq!((page.total, page.pages, page.next_page), (3, 2, None));
        assert_eq!(page.next_cursor, None);
    }

    #[test]
    fn a_cursor_starts_after_its_key_even_when_that_item_is_gone() {
        let key = |n: &u32| vec![format!("{n:03}")];
        let first = PageRequest::parse(Some("2".into()), None, None, 50, 500).unwrap();
        let Listed::Page(page) = cut(vec![10, 20, 30, 40], first, key) else {
            panic!("a page was asked for")
        };
        assert_eq!(page.items, [10, 20]);
        let next = page.next_cursor.expect("more follow");
        // 20 was deleted and 15 and 25 added meanwhile: the next page starts after 20.
        let second = PageRequest::parse(Some("2".into()), None, Some(next), 50, 500).unwrap();
        let Listed::Page(page) = cut(vec![10, 15, 25, 30, 40], second, key) else {
            panic!("a page was asked for")
        };
        assert_eq!(page.items, [25, 30]);
        assert_eq!(page.page, None);
    }

    #[test]
    fn a_cursor_that_is_not_ours_names_the_parameter() {
        for text in ["x", "%%%", "bm90IGpzb24", "W10"] {
            let e = PageRequest::parse(None, None, Some(text.into()), 50, 500).unwrap_err();
            assert_eq!(e.field, "cursor", "{text}");
        }
        let e = PageRequest::parse(None, Some("2".into()), Some("WyJhIl0".into()), 50, 500);
        assert_eq!(e.unwrap_err().field, "cursor");
    }
}
