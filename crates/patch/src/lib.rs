//! drydock's native patcher for Debian and Ubuntu images.
//!
//! By default nothing runs inside the image: the patcher reads the image's package
//! database and APT configuration from its layers ([`dpkgdb`],
//! [`sources`]), plans upgrades against the distribution's signed indexes
//! ([`plan`], [`relation`]), unpacks the verified `.deb` files straight into
//! one new layer with the database updated as dpkg would ([`layer`]), and
//! rewrites the image around it ([`image`]). [`patcher`] ties the steps
//! together over an OCI layout; [`vex`] writes the evidence. In sandbox mode
//! ([`sandbox`]) the image's own dpkg runs the upgraded packages'
//! maintainer scripts under bubblewrap instead, and what it leaves becomes
//! the layer.

pub mod admin;
pub mod candidates;
pub mod debconf;
pub mod dpkgdb;
pub mod effects;
pub mod error;
pub mod image;
pub mod layer;
pub mod ldcache;
pub mod patcher;
pub mod plan;
pub mod postinst;
pub mod preferences;
pub mod publish;
pub mod relation;
pub mod sandbox;
pub mod sources;
pub mod triggers;
pub mod truststore;
pub mod vex;

pub use error::PatchError;
