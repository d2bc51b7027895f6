//! Paging of tag and repository listings: the `n` and `last` query
//! parameters and the `Link` header that points at the next page. Pure.

use std::collections::HashMap;

use crate::error::RequestError;

/// A request for one page: entries after `last`, at most `n` of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub n: Option<u64>,
    pub last: String,
}

impl PageRequest {
    pub fn from_query(query: &HashMap<String, String>) -> Result<PageRequest, RequestError> {
        let n = query
            .get("n")
            .map(|n| {
                n.parse::<u64>().map_err(|_| {
                    RequestError::PaginationNumberInvalid(format!(
                        "n={n:?} is not a non-negative integer"
                    ))
                })
            })
            .transpose()?;
        Ok(PageRequest {
            n,
            last: query.get("last").cloned().unwrap_or_default(),
        })
    }

    /// How many entries to fetch: one more than the page, to learn whether another page follows.
    pub fn fetch_limit(&self) -> u64 {
        self.n.map_or(u64::MAX, |n| n.saturating_add(1))
    }

    /// Cuts `fetched` (from [`PageRequest::fetch_limit`]) to the page and
    /// returns the `Link` header value when more entries remain.
    pub fn page(&self, mut fetched: Vec<String>, path: &str) -> (Vec<String>, Option<String>) {
        let Some(n) = self.n else {
            return (fetched, None);
        };
        if fetched.len() as u64 <= n {
            return (fetched, None);
        }
        fetched.truncate(n as usize);
        let link = fetched
            .last()
            .map(|last| format!("<{path}?n={n}&last={last}>; rel=\"next\""));
        (fetched, link)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pages_with_link_only_when_more_remain() {
        let request = PageRequest::from_query(&query(&[("n", "2"), ("last", "a")])).unwrap();
        assert_eq!(request.fetch_limit(), 3);
        let (page, link) = request.page(names(&["b", "c", "d"]), "/v2/r/tags/list");
        assert_eq!(page, names(&["b", "c"]));
        assert_eq!(
            link.as_deref(),
            Some("</v2/r/tags/list?n=2&last=c>; rel=\"next\"")
        );
        let (page, link) = request.page(names(&["b", "c"]), "/v2/r/tags/list");
        assert_eq!(page, names(&["b", "c"]));
        assert_eq!(link, None);
    }

    #[test]
    fn unbounded_and_zero_and_invalid() {
        let all = PageRequest::from_query(&query(&[])).unwrap();
        assert_eq!(all.fetch_limit(), u64::MAX);
        assert_eq!(
            all.page(names(&["a", "b"]), "/p"),
            (names(&["a", "b"]), None)
        );
        let zero = PageRequest::from_query(&query(&[("n", "0")])).unwrap();
        assert_eq!(zero.page(names(&["a"]), "/p"), (Vec::new(), None));
        assert!(PageRequest::from_query(&query(&[("n", "-1")])).is_err());
    }
}
