//! Parsing request paths of the distribution API into endpoints. Repository
//! names have any number of segments, so paths are read from the right: the
//! endpoint keyword (`blobs`, `manifests`, `tags/list`, `referrers`,
//! `blobs/uploads`) is found at the end and everything before it is the name.
//! Pure: no I/O, no knowledge of methods or storage.

use oci::Digest;
use oci::reference::{is_valid_repository_name, is_valid_tag};
use percent_encoding::percent_decode_str;
use uuid::Uuid;

use crate::error::RequestError;
use crate::service::manifests::Reference;

/// A distribution API endpoint with its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Base,
    Catalog,
    Tags { name: String },
    Manifest { name: String, reference: Reference },
    Blob { name: String, digest: Digest },
    UploadStart { name: String },
    Upload { name: String, id: Uuid },
    Referrers { name: String, digest: Digest },
}

/// Parses a request path such as `/v2/library/nginx/manifests/latest`.
pub fn parse(path: &str) -> Result<Endpoint, RequestError> {
    let unknown = || RequestError::RouteUnknown(path.to_string());
    let rest = match path.strip_prefix("/v2") {
        Some("") | Some("/") => return Ok(Endpoint::Base),
        Some(rest) => rest.strip_prefix('/').ok_or_else(unknown)?,
        None => return Err(unknown()),
    };
    if rest == "_catalog" {
        return Ok(Endpoint::Catalog);
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Ok(Endpoint::Tags {
            name: valid_name(name)?,
        });
    }
    if let Some(name) = rest
        .strip_suffix("/blobs/uploads/")
        .or_else(|| rest.strip_suffix("/blobs/uploads"))
    {
        return Ok(Endpoint::UploadStart {
            name: valid_name(name)?,
        });
    }
    let (head, last) = rest.rsplit_once('/').ok_or_else(unknown)?;
    let last = percent_decode_str(last)
        .decode_utf8()
        .map_err(|_| unknown())?
        .into_owned();
    if let Some(name) = head.strip_suffix("/blobs/uploads") {
        let name = valid_name(name)?;
        let id = last
            .parse()
            .map_err(|_| RequestError::BlobUploadUnknown(last.clone()))?;
        return Ok(Endpoint::Upload { name, id });
    }
    let (name, keyword) = head.rsplit_once('/').ok_or_else(unknown)?;
    match keyword {
        "manifests" => Ok(Endpoint::Manifest {
            name: valid_name(name)?,
            reference: parse_reference(&last)?,
        }),
        "blobs" => Ok(Endpoint::Blob {
            name: valid_name(name)?,
            digest: parse_digest(&last)?,
        }),
        "referrers" => Ok(Endpoint::Referrers {
            name: valid_name(name)?,
            digest: parse_digest(&last)?,
        }),
        _ => Err(unknown()),
    }
}

fn valid_name(name: &str) -> Result<String, RequestError> {
    if is_valid_repository_name(name) {
        Ok(name.to_string())
    } else {
        Err(RequestError::NameInvalid(name.to_string()))
    }
}

pub fn parse_digest(text: &str) -> Result<Digest, RequestError> {
    text.parse()
        .map_err(|e: oci::DigestError| RequestError::DigestInvalid(e.to_string()))
}

fn parse_reference(text: &str) -> Result<Reference, RequestError> {
    if text.contains(':') {
        return parse_digest(text).map(Reference::Digest);
    }
    if is_valid_tag(text) {
        Ok(Reference::Tag(text.to_string()))
    } else {
        Err(RequestError::ManifestInvalid(format!(
            "{text:?} is neither a digest nor a valid tag (up to 128 of [A-Za-z0-9_.-], not starting with '.' or '-')"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn code(path: &str) -> String {
        match parse(path) {
            Err(RequestError::NameInvalid(_)) => "NAME_INVALID".into(),
            Err(RequestError::DigestInvalid(_)) => "DIGEST_INVALID".into(),
            Err(RequestError::ManifestInvalid(_)) => "MANIFEST_INVALID".into(),
            Err(RequestError::BlobUploadUnknown(_)) => "BLOB_UPLOAD_UNKNOWN".into(),
            Err(RequestError::RouteUnknown(_)) => "UNKNOWN_ROUTE".into(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn parses_every_endpoint_with_multi_segment_names() {
        let digest: Digest = DIGEST.parse().unwrap();
        assert_eq!(parse("/v2/").unwrap(), Endpoint::Base);
        assert_eq!(parse("/v2").unwrap(), Endpoint::Base);
        assert_eq!(parse("/v2/_catalog").unwrap(), Endpoint::Catalog);
        assert_eq!(
            parse("/v2/a/b/c/tags/list").unwrap(),
            Endpoint::Tags {
                name: "a/b/c".into()
            }
        );
        assert_eq!(
            parse("/v2/a/b/manifests/latest").unwrap(),
            Endpoint::Manifest {
                name: "a/b".into(),
                reference: Reference::Tag("latest".into())
            }
        );
        assert_eq!(
            parse(&format!("/v2/a/manifests/{DIGEST}")).unwrap(),
            Endpoint::Manifest {
                name: "a".into(),
                reference: Reference::Digest(digest.clone())
            }
        );
        assert_eq!(
            parse(&format!("/v2/x/blobs/{}", DIGEST.replace(':', "%3A"))).unwrap(),
            Endpoint::Blob {
                name: "x".into(),
                digest: digest.clone()
            }
        );
        assert_eq!(
            parse(&format!("/v2/x/y/referrers/{DIGEST}")).unwrap(),
            Endpoint::Referrers {
                name: "x/y".into(),
                digest
            }
        );
        assert_eq!(
            parse("/v2/x/blobs/uploads/").unwrap(),
            Endpoint::UploadStart { name: "x".into() }
        );
        assert_eq!(
            parse("/v2/x/blobs/uploads").unwrap(),
            Endpoint::UploadStart { name: "x".into() }
        );
        let id = Uuid::new_v4();
        assert_eq!(
            parse(&format!("/v2/x/blobs/uploads/{id}")).unwrap(),
            Endpoint::Upload {
                name: "x".into(),
                id
            }
        );
        // Keywords are allowed as name components.
        assert_eq!(
            parse("/v2/blobs/manifests/manifests/t").unwrap(),
            Endpoint::Manifest {
                name: "blobs/manifests".into(),
                reference: Reference::Tag("t".into())
            }
        );
    }

    #[test]
    fn rejects_bad_names_digests_and_references() {
        assert_eq!(code("/v2/UPPER/manifests/t"), "NAME_INVALID");
        assert_eq!(code("/v2/a/../b/manifests/t"), "NAME_INVALID");
        assert_eq!(code("/v2/../manifests/t"), "NAME_INVALID");
        assert_eq!(code("/v2/a//b/tags/list"), "NAME_INVALID");
        assert_eq!(code("/v2//manifests/t"), "NAME_INVALID");
        assert_eq!(code("/v2/a/blobs/sha256:1234"), "DIGEST_INVALID");
        assert_eq!(code("/v2/a/referrers/nope:1"), "DIGEST_INVALID");
        assert_eq!(code("/v2/a/manifests/-bad"), "MANIFEST_INVALID");
        assert_eq!(
            code("/v2/a/blobs/uploads/not-a-uuid"),
            "BLOB_UPLOAD_UNKNOWN"
        );
        assert_eq!(code("/v2/a/whatever/x"), "UNKNOWN_ROUTE");
        assert_eq!(code("/v3/a/manifests/t"), "UNKNOWN_ROUTE");
        assert_eq!(code("/v2/a"), "UNKNOWN_ROUTE");
    }
}
