//! drydock's native patcher for Debian and Ubuntu images.
//!
//! By default nothing runs inside the image: the patcher reads the image's package
//! database and APT configuration from its layers (`dpkgdb`, [`sources`],
//! `preferences`, `admin`), plans upgrades against the distribution's
//! signed indexes ([`plan`] over the parsed indexes of `candidates`),
//! unpacks the verified `.deb` files straight into one new layer with the
//! database updated as dpkg would (`layer`, with [`ldcache`], `triggers`,
//! `postinst`, `debconf` and `truststore` for what maintainer scripts would
//! have changed; [`effects`] says what was reproduced), and rewrites the
//! image around it ([`image`]). [`patcher`] ties the steps together over an
//! OCI layout; [`vex`] writes the evidence. In sandbox mode (`sandbox`)
//! the image's own dpkg runs the upgraded packages' maintainer scripts
//! under bubblewrap instead, and what it leaves becomes the layer.
//!
//! Every failure is a [`PatchError`], which rolls up the modules' own errors.

mod admin;
mod candidates;
mod debconf;
mod dpkgdb;
pub mod effects;
mod error;
pub mod image;
mod layer;
pub mod ldcache;
pub mod patcher;
pub mod plan;
mod postinst;
mod preferences;
mod relation;
mod sandbox;
pub mod sources;
mod triggers;
mod truststore;
pub mod vex;

pub use admin::AdminError;
pub use candidates::IndexCacheError;
pub use error::PatchError;
pub use layer::BuiltLayer;
pub use preferences::PreferencesError;
