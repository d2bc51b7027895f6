//! The patched image: one layer on top of the original, and the documents
//! that describe it.
//!
//! Owns rewriting the configuration (`rootfs.diff_ids`, a `history` entry
//! saying what was upgraded and why; labels, environment and everything
//! else kept), the manifest (the new layer and config; annotations naming
//! the original as `org.opencontainers.image.base.{name,digest}` and
//! drydock's own record of the upgrades), and the index of a multi-platform
//! image. Docker schema 2 manifests become OCI manifests (the blobs are the
//! same; only descriptors' media types change). Pure and deterministic: no
//! clock is read; the history entry takes the original's creation time.

use std::collections::BTreeMap;

use oci::Digest;
use oci::manifest::media_type;
use serde_json::{Value, json};

use crate::effects::ScriptEffect;
use crate::plan::Plan;

/// The digest of the unpatched manifest (or index) a patched one was built from.
pub const ANNOTATION_ORIGINAL: &str = "dev.drydock.patch.original";
/// `name=from→to` for every package the patch changed, comma-separated.
pub(crate) const ANNOTATION_PACKAGES: &str = "dev.drydock.patch.packages";
/// The original image as the user named it (the OCI annotation).
pub const ANNOTATION_BASE_NAME: &str = "org.opencontainers.image.base.name";
/// The original manifest's digest (the OCI annotation).
pub(crate) const ANNOTATION_BASE_DIGEST: &str = "org.opencontainers.image.base.digest";

const LAYER_GZIP: &str = media_type::OCI_LAYER_GZIP;

/// The new layer as the manifest and config need it.
#[derive(Debug, Clone)]
pub(crate) struct LayerRef {
    pub(crate) digest: Digest,
    pub(crate) size: u64,
    pub(crate) diff_id: Digest,
}

/// `libssl3=3.0.15-1~deb12u1→3.0.17-1~deb12u2,…`
pub(crate) fn packages_annotation(plan: &Plan) -> String {
    plan.steps
        .iter()
        .map(|s| {
            format!(
                "{}={}→{}",
                s.name,
                s.from.as_deref().unwrap_or("(new)"),
                s.to_version()
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The history entry's text: what changed and why.
fn history_comment(plan: &Plan, effects: &[ScriptEffect]) -> String {
    let upgraded = plan.steps.iter().filter(|s| s.from.is_some()).count();
    let added = plan.steps.len() - upgraded;
    let (vulnerabilities, pending) = crate::effects::fixed_and_pending(plan, effects);
    let vulnerabilities: Vec<String> = vulnerabilities.into_iter().collect();
    let mut comment = format!("drydock patch: {upgraded} package(s) upgraded");
    if added > 0 {
        comment.push_str(&format!(", {added} added as dependencies"));
    }
    if !vulnerabilities.is_empty() {
        let shown: Vec<&str> = vulnerabilities
            .iter()
            .take(50)
            .map(String::as_str)
            .collect();
        comment.push_str(&format!(
            "; fixes {} vulnerabilit{}: {}{}",
            vulnerabilities.len(),
            if vulnerabilities.len() == 1 {
                "y"
            } else {
                "ies"
            },
            shown.join(", "),
            if vulnerabilities.len() > shown.len() {
                ", …"
            } else {
                ""
            }
        ));
    }
    if !pending.is_empty() {
        comment.push_str(&format!(
            "; {} more upgraded but not fixed until maintainer-script effects run",
            pending.len()
        ));
    }
    comment
}

/// The patched configuration.
pub(crate) fn rewrite_config(
    original: &Value,
    layer: &LayerRef,
    plan: &Plan,
    effects: &[ScriptEffect],
) -> Value {
    let mut config = original.clone();
    if let Some(diff_ids) = config
        .pointer_mut("/rootfs/diff_ids")
        .and_then(Value::as_array_mut)
    {
        diff_ids.push(Value::String(layer.diff_id.to_string()));
    }
    let mut entry = serde_json::Map::new();
    if let Some(created) = original.get("created") {
        entry.insert("created".into(), created.clone());
    }
    let created_by: Vec<String> = plan
        .steps
        .iter()
        .map(|s| format!("{}={}", s.name, s.to_version()))
        .collect();
    entry.insert(
        "created_by".into(),
        Value::String(format!("drydock patch {}", created_by.join(" "))),
    );
    entry.insert(
        "comment".into(),
        Value::String(history_comment(plan, effects)),
    );
    match config.get_mut("history").and_then(Value::as_array_mut) {
        Some(history) => history.push(Value::Object(entry)),
        None => {
            if let Some(object) = config.as_object_mut() {
                object.insert("history".into(), json!([entry]));
            }
        }
    }
    config
}

/// The patched manifest. `base_name` is the original as the user named it.
pub(crate) fn rewrite_manifest(
    original: &Value,
    original_digest: &Digest,
    base_name: &str,
    config: (&Digest, u64),
    layer: &LayerRef,
    plan: &Plan,
) -> Value {
    let mut manifest = original.clone();
    let object = manifest
        .as_object_mut()
        .expect("a manifest is a JSON object");
    object.insert("schemaVersion".into(), json!(2));
    object.insert("mediaType".into(), json!(media_type::OCI_MANIFEST));
    object.insert(
        "config".into(),
        json!({
            "mediaType": media_type::OCI_CONFIG,
            "digest": config.0.to_string(),
            "size": config.1,
        }),
    );
    let mut layers: Vec<Value> = object
        .get("layers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for existing in &mut layers {
        if let Some(kind) = existing.get("mediaType").and_then(Value::as_str) {
            let oci = match kind {
                "application/vnd.docker.image.rootfs.diff.tar.gzip" => LAYER_GZIP,
                "application/vnd.docker.image.rootfs.diff.tar" => {
                    "application/vnd.oci.image.layer.v1.tar"
                }
                other => other,
            }
            .to_string();
            existing["mediaType"] = Value::String(oci);
        }
    }
    layers.push(json!({
        "mediaType": LAYER_GZIP,
        "digest": layer.digest.to_string(),
        "size": layer.size,
    }));
    object.insert("layers".into(), Value::Array(layers));
    record_patch(
        object,
        base_name,
        original_digest,
        packages_annotation(plan),
    );
    manifest
}

/// Adds the annotations that name the original and the upgrades to a
/// manifest's or index's own, keeping the others.
fn record_patch(
    object: &mut serde_json::Map<String, Value>,
    base_name: &str,
    original_digest: &Digest,
    packages: impl Into<Value>,
) {
    let mut annotations: BTreeMap<String, Value> = object
        .get("annotations")
        .and_then(Value::as_object)
        .map(|a| a.clone().into_iter().collect())
        .unwrap_or_default();
    annotations.insert(ANNOTATION_BASE_NAME.into(), json!(base_name));
    annotations.insert(
        ANNOTATION_BASE_DIGEST.into(),
        json!(original_digest.to_string()),
    );
    annotations.insert(
        ANNOTATION_ORIGINAL.into(),
        json!(original_digest.to_string()),
    );
    annotations.insert(ANNOTATION_PACKAGES.into(), packages.into());
    object.insert(
        "annotations".into(),
        Value::Object(annotations.into_iter().collect()),
    );
}

/// A platform's entry in a rebuilt index: the old descriptor and, when the
/// platform was patched, its new manifest's digest and size.
pub(crate) struct IndexEntry {
    pub(crate) original: Value,
    pub(crate) patched: Option<(Digest, u64)>,
}

/// The patched index: patched platforms point at their new manifests, the
/// others are carried unchanged.
pub(crate) fn rewrite_index(
    original: &Value,
    original_digest: &Digest,
    base_name: &str,
    entries: Vec<IndexEntry>,
    packages: &str,
) -> Value {
    let mut index = original.clone();
    let object = index.as_object_mut().expect("an index is a JSON object");
    object.insert("schemaVersion".into(), json!(2));
    object.insert("mediaType".into(), json!(media_type::OCI_INDEX));
    let manifests: Vec<Value> = entries
        .into_iter()
        .map(|entry| {
            let mut descriptor = entry.original;
            if let Some((digest, size)) = entry.patched {
                descriptor["digest"] = json!(digest.to_string());
                descriptor["size"] = json!(size);
                descriptor["mediaType"] = json!(media_type::OCI_MANIFEST);
            }
            descriptor
        })
        .collect();
    object.insert("manifests".into(), Value::Array(manifests));
    record_patch(object, base_name, original_digest, packages);
    index
}
