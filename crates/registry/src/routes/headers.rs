//! Byte-range headers: the `Content-Range` of an upload chunk and the `Range`
//! of a blob read. Pure parsing, no I/O.

use crate::service::uploads::ChunkRange;

/// Parses an upload chunk's `Content-Range`: the spec's `<start>-<end>`
/// (inclusive), also accepting the RFC form `bytes <start>-<end>[/<total>]`.
pub fn parse_content_range(value: &str) -> Option<ChunkRange> {
    let value = value.trim();
    let value = value
        .strip_prefix("bytes")
        .map(str::trim_start)
        .unwrap_or(value);
    let value = value.split_once('/').map_or(value, |(range, _total)| range);
    let (start, end) = value.split_once('-')?;
    let start = start.trim().parse().ok()?;
    let end = match end.trim() {
        "" => None,
        end => Some(end.parse().ok()?),
    };
    if end.is_some_and(|end| end < start) {
        return None;
    }
    Some(ChunkRange { start, end })
}

/// The part of a blob a `Range` header asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// Serve the whole blob (no header, or one we do not interpret).
    Whole,
    /// Serve `start..=end`.
    Part { start: u64, end: u64 },
    /// The range lies outside the blob.
    Unsatisfiable,
}

/// Resolves a `Range: bytes=…` header against a blob of `size` bytes.
/// Only single ranges are honoured; anything else is served whole.
pub fn resolve_range(header: Option<&str>, size: u64) -> ByteRange {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return ByteRange::Whole;
    };
    if spec.contains(',') {
        return ByteRange::Whole;
    }
    let Some((start, end)) = spec.split_once('-') else {
        return ByteRange::Whole;
    };
    let (start, end) = (start.trim(), end.trim());
    let parsed = match (start.is_empty(), end.is_empty()) {
        (true, true) => None,
        // Suffix: the last `end` bytes.
        (true, false) => end.parse::<u64>().ok().map(|n| {
            if n == 0 || size == 0 {
                (size, size)
            } else {
                (size.saturating_sub(n), size - 1)
            }
        }),
        (false, true) => start
            .parse::<u64>()
            .ok()
            .map(|s| (s, size.saturating_sub(1))),
        (false, false) => match (start.parse::<u64>(), end.parse::<u64>()) {
            (Ok(s), Ok(e)) if e >= s => Some((s, e.min(size.saturating_sub(1)))),
            _ => None,
        },
    };
    match parsed {
        None => ByteRange::Whole,
        Some((start, _)) if start >= size => ByteRange::Unsatisfiable,
        Some((start, end)) => ByteRange::Part { start, end },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_forms() {
        let range = |start, end| Some(ChunkRange { start, end });
        assert_eq!(parse_content_range("0-99"), range(0, Some(99)));
        assert_eq!(
            parse_content_range("bytes 100-199/1000"),
            range(100, Some(199))
        );
        assert_eq!(
            parse_content_range("bytes 100-199/*"),
            range(100, Some(199))
        );
        assert_eq!(parse_content_range("5-"), range(5, None));
        assert_eq!(parse_content_range("9-3"), None);
        assert_eq!(parse_content_range("abc"), None);
        assert_eq!(parse_content_range("-5"), None);
    }

    #[test]
    fn blob_ranges() {
        use ByteRange::*;
        assert_eq!(resolve_range(None, 10), Whole);
        assert_eq!(
            resolve_range(Some("bytes=0-3"), 10),
            Part { start: 0, end: 3 }
        );
        assert_eq!(
            resolve_range(Some("bytes=4-"), 10),
            Part { start: 4, end: 9 }
        );
        assert_eq!(
            resolve_range(Some("bytes=5-100"), 10),
            Part { start: 5, end: 9 }
        );
        assert_eq!(
            resolve_range(Some("bytes=-3"), 10),
            Part { start: 7, end: 9 }
        );
        assert_eq!(
            resolve_range(Some("bytes=-30"), 10),
            Part { start: 0, end: 9 }
        );
        assert_eq!(resolve_range(Some("bytes=10-"), 10), Unsatisfiable);
        assert_eq!(resolve_range(Some("bytes=-0"), 10), Unsatisfiable);
        assert_eq!(resolve_range(Some("bytes=0-0"), 0), Unsatisfiable);
        assert_eq!(resolve_range(Some("bytes=0-1,3-4"), 10), Whole);
        assert_eq!(resolve_range(Some("bytes=x-y"), 10), Whole);
        assert_eq!(resolve_range(Some("items=0-1"), 10), Whole);
    }
}
