//! The OCI core of drydock: content digests, image references, manifests,
//! OCI image layouts on disk, a registry client, and copying images between
//! any two of those places.
//!
//! Everything that crosses this crate's boundary as bytes is verified
//! against its digest before it is handed on.

pub mod atomic;
pub mod client;
pub mod copy;
pub mod digest;
pub mod docker_archive;
mod error;
pub mod layout;
pub mod manifest;
pub mod reference;

pub use client::{ClientOptions, Credentials, RegistryClient, SharedHttp};
pub use digest::{Algorithm, Digest, DigestError, DigestMismatch, Hasher, Verifier, VerifyError};
pub use error::{
    ArchiveError, AuthError, CredentialsError, Error, LayoutError, RegistryErrorBody, Result,
    error_chain,
};
pub use layout::OciLayout;
pub use manifest::{ContentRef, Manifest, ManifestError, ParsedManifest, media_type};
pub use reference::{ImageLocation, ImageReference, ReferenceError};
