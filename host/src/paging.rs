//! Pages of a list: `limit` and `page` checked into a [`PageRequest`], and the answer
//! ([`Listed`]): the plain array when neither is given (what existing clients read), else a
//! [`Paged`] envelope with the total and the next page. The sources list
//! ([`crate::sources::listing`]) and a project's links ([`crate::links::list`]) page this way.

use schemars::JsonSchema;
use serde::Serialize;

use crate::field::FieldError;

/// A page asked for: its number (from 1) and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest {
    /// Page number, from 1.
    pub page: usize,
    /// Items per page.
    pub limit: usize,
}

impl PageRequest {
    /// Checks the `limit` (1 to `max`) and `page` (from 1) parameters; `None` when neither is
    /// given, `default_limit` when only `page` is. A bad value is a [`FieldError`] naming it.
    pub fn parse(
        limit: Option<String>,
        page: Option<String>,
        default_limit: usize,
        max: usize,
    ) -> Result<Option<PageRequest>, FieldError> {
        let limit = number("limit", limit, 1, max)?;
        let page = number("page", page, 1, usize::MAX)?;
        Ok((limit.is_some() || page.is_some()).then(|| PageRequest {
            page: page.unwrap_or(1),
            limit: limit.unwrap_or(default_limit),
        }))
    }
}

/// The answer of a list: the plain array, or one page of it when a page was asked for.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "{T}List")]
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
            }),
        }
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
    /// This page's number, from 1.
    pub page: usize,
    /// The page size.
    pub limit: usize,
    /// How many pages there are (at least 1).
    pub pages: usize,
    /// The next page's number, or null on the last page.
    pub next_page: Option<usize>,
}

/// The asked page of `items` (already filtered and ordered), or all of them.
pub fn cut<T>(items: Vec<T>, request: Option<PageRequest>) -> Listed<T> {
    let Some(PageRequest { page, limit }) = request else {
        return Listed::All(items);
    };
    let total = items.len();
    let pages = total.div_ceil(limit).max(1);
    let start = (page - 1).saturating_mul(limit).min(total);
    let items: Vec<T> = items.into_iter().skip(start).take(limit).collect();
    Listed::Page(Paged {
        items,
        total,
        page,
        limit,
        pages,
        next_page: (page < pages).then_some(page + 1),
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
            PageRequest::parse(l.map(Into::into), p.map(Into::into), 50, 500)
        };
        assert_eq!(parse(None, None).unwrap(), None);
        let page = |page, limit| Some(PageRequest { page, limit });
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
        let Listed::Page(page) = cut(vec![1, 2, 3], Some(PageRequest { page: 9, limit: 2 })) else {
            panic!("a page was asked for")
        };
        assert!(page.items.is_empty());
        assert_eq!((page.total, page.pages, page.next_page), (3, 2, None));
    }
}
