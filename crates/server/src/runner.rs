//! The pipeline of a workflow run: trigger → scan → patch, per image.
//!
//! Owns executing runs against a registry: the trigger lists the configured
//! repositories' tags, learns which tags are drydock's patches from their
//! manifests (the `dev.drydock.patch.original` annotation and the original
//! named by `org.opencontainers.image.base.name`), matches the config and
//! queues one scan per image; a scan looks at the latest patch (or the
//! original) for fixable OS-package vulnerabilities and skips, with the
//! reason, what it cannot or need not patch; a patch builds the next patch
//! tag from the original and pushes it, tag last. At most `parallelism`
//! images are worked on at once, and one run at a time per image. Each run
//! writes its log as it goes; cancelling aborts the work between steps,
//! and a tag only ever moves once everything it points to is in the
//! registry, so an interrupted run leaves no partial tag.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use advisory::{SecurityRepo, SecurityRepoOptions};
use chrono::Utc;
use oci::{ClientOptions, ImageReference, RegistryClient};
use patch::patcher::{Patcher, PatcherOptions, WantSource};
use patch::publish::{self, Output};
use scan::matching::Filters;
use scan::{ScanError, Scanner, ScannerOptions};
use tokio::sync::Semaphore;
use workflow::{
    Config, DryRun, MatchedImage, PatchTagError, RepositoryTags, RunStatus, SkipReason, TaskKind,
};

use crate::store::{NewRun, Run, ScanPolicy, Store, StoreError, WorkflowRecord};

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Config(#[from] workflow::ConfigError),
    #[error(transparent)]
    TooManyImages(#[from] workflow::TooManyImages),
    #[error("the registry {registry}: {message}")]
    Registry { registry: String, message: String },
    #[error("no workflow named {0:?}")]
    NoWorkflow(String),
}

pub struct RunnerOptions {
    /// drydock's data directory: advisory database, scan and patch caches.
    pub data_dir: PathBuf,
    /// Images worked on at once.
    pub parallelism: usize,
    /// Use only cached advisory data (no network for the security
    /// repository, no refresh of the advisory database).
    pub offline: bool,
    /// Before a trigger, online feeds of the advisory database older than
    /// this are fetched again.
    pub advisory_max_age: std::time::Duration,
}

pub struct Runner {
    store: Arc<Store>,
    options: RunnerOptions,
    patcher: Patcher,
    permits: Semaphore,
    /// `registry/repository:tag` of originals with an active scan or patch.
    in_flight: Mutex<HashSet<String>>,
    /// Aborts the task of each active run.
    tasks: Mutex<HashMap<String, tokio::task::AbortHandle>>,
}

/// How a scan ended.
enum ScanVerdict {
    Patch(usize),
    Skip(String),
}

impl Runner {
    pub fn new(
        store: Arc<Store>,
        options: RunnerOptions,
    ) -> Result<Arc<Runner>, patch::PatchError> {
        let patcher = Patcher::new(PatcherOptions {
            cache_dir: options.data_dir.join("patch-cache"),
            mirrors: Vec::new(),
            debian_keyrings: Vec::new(),
            ubuntu_keyrings: Vec::new(),
            allow_eol: false,
            allow_unsigned: false,
            release_max_age: std::time::Duration::from_secs(300),
            platforms: Vec::new(),
        })?;
        Ok(Arc::new(Runner {
            store,
            permits: Semaphore::new(options.parallelism.max(1)),
            options,
            patcher,
            in_flight: Mutex::default(),
            tasks: Mutex::default(),
        }))
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    fn client(record: &WorkflowRecord) -> Result<RegistryClient, RunnerError> {
        RegistryClient::new(ClientOptions {
            plain_http: record.plain_http,
            ..ClientOptions::default()
        })
        .map_err(|e| RunnerError::Registry {
            registry: record.registry.clone(),
            message: e.to_string(),
        })
    }

    /// The registry's view of the configured repositories: their tags, and
    /// which tags are drydock's patches of which original.
    async fn listing(
        &self,
        record: &WorkflowRecord,
        config: &Config,
    ) -> Result<BTreeMap<String, RepositoryTags>, RunnerError> {
        let client = Self::client(record)?;
        let registry_error = |message: String| RunnerError::Registry {
            registry: record.registry.clone(),
            message,
        };
        let mut listing = BTreeMap::new();
        for filter in config.enabled_repositories() {
            let repository = filter.repository();
            let reference = ImageReference::new(&record.registry, repository, None, None)
                .map_err(|e| registry_error(e.to_string()))?;
            let tags = match client.list_tags(&reference).await {
                Ok(tags) => tags,
                Err(oci::Error::NotFound(_)) => continue,
                Err(e) => return Err(registry_error(format!("listing {repository}: {e}"))),
            };
            let mut patch_origins = BTreeMap::new();
            for tag in &tags {
                let image = reference
                    .with_tag(tag)
                    .map_err(|e| registry_error(e.to_string()))?;
                let Ok(manifest) = client.get_manifest(&image).await else {
                    continue;
                };
                if let Some(original) = patched_from(&manifest.bytes) {
                    patch_origins.insert(tag.clone(), original);
                }
            }
            listing.insert(
                repository.to_string(),
                RepositoryTags::new(tags, &patch_origins),
            );
        }
        Ok(listing)
    }

    /// What a run of `record` would do now.
    pub async fn dry_run(&self, record: &WorkflowRecord) -> Result<DryRun, RunnerError> {
        let config = Config::parse(record.config.as_bytes())?;
        let listing = self.listing(record, &config).await?;
        Ok(workflow::match_config(&config, &listing))
    }

    /// Queues a trigger run of `workflow` and starts it.
    pub fn trigger(self: &Arc<Self>, workflow: &str) -> Result<Run, RunnerError> {
        let record = self
            .store
            .workflow(workflow)?
            .ok_or_else(|| RunnerError::NoWorkflow(workflow.to_string()))?;
        self.store.set_last_trigger(workflow, Utc::now())?;
        let run = self
            .store
            .queue_run(workflow, TaskKind::Trigger, NewRun::default())?;
        let runner = self.clone();
        let id = run.id.clone();
        self.spawn(&run.id, async move {
            runner.run_trigger(&id, record).await;
        });
        Ok(run)
    }

    fn spawn(&self, id: &str, work: impl std::future::Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(work);
        self.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.to_string(), handle.abort_handle());
    }

    fn done(&self, id: &str) {
        self.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }

    /// Cancels a workflow's queued and running runs; the schedule continues.
    pub fn cancel(&self, workflow: &str) -> Result<Vec<String>, RunnerError> {
        let canceled = self.store.cancel_active(workflow)?;
        let tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        for id in &canceled {
            if let Some(task) = tasks.get(id) {
                task.abort();
            }
        }
        Ok(canceled)
    }

    fn log(&self, id: &str, line: &str) {
        if let Err(e) = self.store.log(id, line) {
            tracing::warn!("run {id}: cannot write its log: {e}");
        }
    }

    fn finish(&self, id: &str, status: RunStatus, reason: Option<&str>) {
        if let Some(reason) = reason {
            self.log(id, &format!("{status}: {reason}"));
        } else {
            self.log(id, &status.to_string());
        }
        if let Err(e) = self.store.finish_run(id, status, reason) {
            tracing::warn!("run {id}: cannot record its end: {e}");
        }
        self.done(id);
    }

    async fn run_trigger(self: Arc<Self>, id: &str, record: WorkflowRecord) {
        if !self.store.start_run(id).unwrap_or(false) {
            return self.done(id);
        }
        self.refresh_advisories(id).await;
        self.log(
            id,
            &format!("listing {} for workflow {}", record.registry, record.name),
        );
        let dry_run = match self.dry_run(&record).await {
            Ok(dry_run) => dry_run,
            Err(e) => return self.finish(id, RunStatus::Failed, Some(&e.to_string())),
        };
        for line in workflow::render_dry_run(&dry_run).lines() {
            self.log(id, line);
        }
        if let Err(e) = dry_run.check_image_limit() {
            return self.finish(id, RunStatus::Failed, Some(&e.to_string()));
        }
        let mut queued = 0;
        for image in dry_run.matched {
            let original = format!("{}/{}:{}", record.registry, image.repository, image.tag);
            if !self
                .in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(original.clone())
            {
                self.log(
                    id,
                    &format!("{original}: a run for this image is still active; not queued again"),
                );
                continue;
            }
            let target = format!(
                "{}/{}:{}",
                record.registry,
                image.repository,
                image.scan_target()
            );
            let scan = match self.store.queue_run(
                &record.name,
                TaskKind::Scan,
                NewRun {
                    parent: Some(id),
                    image: Some(&target),
                    repository: Some(&image.repository),
                    tag: Some(&image.tag),
                },
            ) {
                Ok(scan) => scan,
                Err(e) => {
                    self.release(&original);
                    return self.finish(id, RunStatus::Failed, Some(&e.to_string()));
                }
            };
            self.log(id, &format!("queued scan {} of {target}", scan.id));
            queued += 1;
            let runner = self.clone();
            let (record, trigger) = (record.clone(), id.to_string());
            let scan_id = scan.id.clone();
            self.spawn(&scan.id, async move {
                let _permit = runner.permits.acquire().await;
                // The scanner holds a database connection that cannot move
                // between threads: each image is worked on by one thread.
                let worker = runner.clone();
                let worked = tokio::task::spawn_blocking(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| e.to_string())?;
                    runtime
                        .block_on(worker.run_image(&scan_id, &trigger, &record, &image, &target));
                    drop(runtime);
                    release_freed_memory();
                    Ok::<(), String>(())
                })
                .await;
                if let Err(e) | Ok(Err(e)) = worked.map_err(|e| e.to_string()) {
                    tracing::error!("a scan task failed: {e}");
                }
                runner.release(&original);
            });
        }
        self.finish(
            id,
            RunStatus::Succeeded,
            Some(&format!("{queued} image(s) queued for scanning")),
        );
    }

    /// Fetches again the advisory database's online feeds that are older
    /// than the configured age. A feed that cannot be fetched keeps its
    /// stored copy (and the log says so); feeds imported from files are left
    /// alone, as is everything in offline mode.
    async fn refresh_advisories(&self, id: &str) {
        let path = self.options.data_dir.join("advisories.db");
        if !path.exists() {
            return;
        }
        if self.options.offline {
            return self.log(id, "offline: scanning with the advisory database as stored");
        }
        let mut store = match advisory::Store::open(&path) {
            Ok(store) => store,
            Err(e) => return self.log(id, &format!("the advisory database cannot be opened: {e}")),
        };
        let now = Utc::now().timestamp();
        let max_age = self.options.advisory_max_age.as_secs() as i64;
        let stale: std::collections::BTreeSet<advisory::Source> = store
            .feeds()
            .unwrap_or_default()
            .into_iter()
            .filter(|f| {
                f.source.location.starts_with("http") && now - f.source.fetched_at > max_age
            })
            .filter_map(|f| feed_source(&f.source.name))
            .collect();
        if stale.is_empty() {
            return;
        }
        let fetcher = match advisory::Fetcher::new(
            BTreeMap::new(),
            advisory::feeds::fetch::DEFAULT_ALPINE_RELEASES
                .map(str::to_string)
                .to_vec(),
            &self.options.data_dir,
        ) {
            Ok(fetcher) => fetcher,
            Err(e) => return self.log(id, &format!("cannot refresh advisories: {e}")),
        };
        for source in stale {
            self.log(
                id,
                &format!(
                    "advisory feed {} is older than {}s; fetching it again",
                    source.name(),
                    max_age
                ),
            );
            let fetched = fetcher.fetch(source, &|_, _, _| {}).await;
            match fetched.and_then(|loaded| store.replace_feeds(&loaded)) {
                Ok(_) => self.log(id, &format!("advisory feed {} refreshed", source.name())),
                Err(e) => self.log(
                    id,
                    &format!(
                        "advisory feed {} could not be refreshed ({e}); using the stored copy",
                        source.name()
                    ),
                ),
            }
        }
    }

    fn release(&self, original: &str) {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(original);
    }

    /// The scanner of one workflow's images, reaching its registry as the
    /// workflow says (plain HTTP or HTTPS), as listing and patching do.
    fn scanner(&self, plain_http: bool) -> Result<Scanner, String> {
        let db = self.options.data_dir.join("advisories.db");
        let store = if db.exists() {
            Some(advisory::Store::open_existing(&db).map_err(|e| e.to_string())?)
        } else {
            None
        };
        let cache = scan::scanner::cache_dir(&self.options.data_dir);
        let security = SecurityRepo::new(SecurityRepoOptions {
            offline: self.options.offline,
            // One fetch of the pocket's InRelease serves every image of a run.
            max_age: Some(std::time::Duration::from_secs(300)),
            ..SecurityRepoOptions::new(cache.clone())
        })
        .map_err(|e| e.to_string())?;
        Scanner::new(
            store,
            Some(security),
            ScannerOptions {
                cache_dir: cache,
                registry: ClientOptions {
                    plain_http,
                    ..ClientOptions::default()
                },
                filters: Filters {
                    ignore_unfixed: true,
                    severities: Vec::new(),
                },
            },
        )
        .map_err(|e| e.to_string())
    }

    async fn scan(
        &self,
        id: &str,
        target: &str,
        scanner: &Scanner,
        policy: &ScanPolicy,
    ) -> Result<ScanVerdict, String> {
        self.log(
            id,
            &format!("scanning {target} for fixable OS-package vulnerabilities"),
        );
        let report = match scanner.scan(target).await {
            Ok(report) => report,
            Err(ScanError::Windows { .. }) => {
                return Ok(ScanVerdict::Skip(SkipReason::WindowsImage.to_string()));
            }
            Err(ScanError::NoPackageDatabase { .. }) => {
                return Ok(ScanVerdict::Skip(SkipReason::NoPackageDatabase.to_string()));
            }
            Err(e @ (ScanError::NoOs { .. } | ScanError::UnsupportedOs { .. })) => {
                return Ok(ScanVerdict::Skip(e.to_string()));
            }
            Err(e) => return Err(e.to_string()),
        };
        if report.os.as_ref().is_some_and(|os| os.eosl) {
            return Ok(ScanVerdict::Skip(SkipReason::EndOfLife.to_string()));
        }
        for result in &report.results {
            self.log(id, &format!("{}: {}", result.target, result.total_line()));
        }
        let fixable: usize = report
            .results
            .iter()
            .flat_map(|r| &r.findings)
            .filter(|f| policy.counts(&f.vulnerability_id, f.severity))
            .count();
        let set_aside: usize = report
            .results
            .iter()
            .map(|r| r.findings.len())
            .sum::<usize>()
            - fixable;
        if set_aside > 0 {
            self.log(
                id,
                &format!("{set_aside} fixable finding(s) below the workflow's severity threshold or on its ignore list"),
            );
        }
        Ok(if fixable == 0 {
            ScanVerdict::Skip(SkipReason::NothingFixable.to_string())
        } else {
            ScanVerdict::Patch(fixable)
        })
    }

    /// The scan of one image and, when it finds something fixable, its patch.
    async fn run_image(
        &self,
        scan_id: &str,
        trigger: &str,
        record: &WorkflowRecord,
        image: &MatchedImage,
        target: &str,
    ) {
        if !self.store.start_run(scan_id).unwrap_or(false) {
            return self.done(scan_id);
        }
        let scanner = match self.scanner(record.plain_http) {
            Ok(scanner) => scanner,
            Err(e) => return self.finish(scan_id, RunStatus::Failed, Some(&e)),
        };
        let fixable = match self.scan(scan_id, target, &scanner, &record.policy).await {
            Ok(ScanVerdict::Patch(count)) => count,
            Ok(ScanVerdict::Skip(reason)) => {
                return self.finish(scan_id, RunStatus::Skipped, Some(&reason));
            }
            Err(e) => return self.finish(scan_id, RunStatus::Failed, Some(&e)),
        };
        let original = format!("{}/{}:{}", record.registry, image.repository, image.tag);
        let next = match &image.next_patch {
            Ok(next) => next.name(),
            Err(PatchTagError::LimitReached { .. }) => {
                return self.finish(
                    scan_id,
                    RunStatus::Skipped,
                    Some(&SkipReason::TagLimitReached.to_string()),
                );
            }
            Err(e) => return self.finish(scan_id, RunStatus::Failed, Some(&e.to_string())),
        };
        let patch = match self.store.queue_run(
            &record.name,
            TaskKind::Patch,
            NewRun {
                parent: Some(trigger),
                image: Some(&original),
                repository: Some(&image.repository),
                tag: Some(&image.tag),
            },
        ) {
            Ok(patch) => patch,
            Err(e) => return self.finish(scan_id, RunStatus::Failed, Some(&e.to_string())),
        };
        self.finish(
            scan_id,
            RunStatus::Succeeded,
            Some(&format!(
                "{fixable} fixable OS-package vulnerabilities; queued patch {}",
                patch.id
            )),
        );
        // The patch runs in this task: the image's slot is held until it ends.
        if !self.store.start_run(&patch.id).unwrap_or(false) {
            return self.done(&patch.id);
        }
        match self
            .patch(&patch.id, record, &original, &next, &scanner)
            .await
        {
            Ok(Some(patched)) => {
                let _ = self.store.set_patched_image(&patch.id, &patched);
                self.finish(
                    &patch.id,
                    RunStatus::Succeeded,
                    Some(&format!("patched image pushed to {patched}")),
                );
            }
            Ok(None) => self.finish(
                &patch.id,
                RunStatus::Skipped,
                Some("the configured suites have no fixed version yet for the vulnerable packages"),
            ),
            Err(e) => self.finish(&patch.id, RunStatus::Failed, Some(&e)),
        }
    }

    async fn patch(
        &self,
        id: &str,
        record: &WorkflowRecord,
        original: &str,
        next: &str,
        scanner: &Scanner,
    ) -> Result<Option<String>, String> {
        self.log(id, &format!("patching {original} into tag {next}"));
        let cache = self.options.data_dir.join("patch-cache");
        let registry = ClientOptions {
            plain_http: record.plain_http,
            ..ClientOptions::default()
        };
        let source = publish::open(original, registry, &cache)
            .await
            .map_err(|e| e.to_string())?;
        let outcome = self
            .patcher
            .patch(
                &source.work,
                &source.content,
                &source.base_name,
                &WantSource::Scan(scanner),
                record.policy.maintainer_scripts,
                false,
            )
            .await
            .map_err(|e| e.to_string())?;
        for platform in &outcome.platforms {
            for step in &platform.plan.steps {
                self.log(
                    id,
                    &format!(
                        "{} {} -> {}",
                        step.name,
                        step.from.as_deref().unwrap_or("(new)"),
                        step.to_version()
                    ),
                );
            }
            for effect in platform.layer.iter().flat_map(|l| &l.script_effects) {
                self.log(
                    id,
                    &format!("{}: {}: {}", effect.handling, effect.package, effect.effect),
                );
            }
        }
        let Some(patched) = outcome.patched.clone() else {
            return Ok(None);
        };
        if self
            .store
            .run(id)
            .ok()
            .flatten()
            .is_some_and(|r| r.status == RunStatus::Canceled)
        {
            return Err(
                "canceled before the patched image was pushed; nothing was written".to_string(),
            );
        }
        let written = publish::write(&source, &patched, Output::Beside(next.to_string()))
            .await
            .map_err(|e| e.to_string())?;
        let evidence = publish::evidence(&outcome, &patched, &written, scanner)
            .await
            .map_err(|e| e.to_string())?;
        publish::attach(&written, &patched, &evidence)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Some(written.name))
    }
}

/// Returns the memory an image's work freed to the system (also called by
/// the scheduler's loop, so an idle server gives back what its API and
/// registry threads freed). A patch
/// decompresses packages and builds a layer in memory on a pool thread;
/// glibc keeps such freed memory in that thread's arena, so a long-lived
/// server that patched many images would otherwise stay at its peak.
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory of malloc's own arenas to the OS.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Caps glibc's malloc at two arenas for a long-lived server. Without a cap
/// every thread that ever patched an image keeps an arena of its own, and
/// with it the peak of that work, long after (hundreds of MiB after a large
/// run, where two arenas and [`release_freed_memory`] go back to ~30 MiB).
pub fn configure_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes malloc's tuning; called once at start-up.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// The online source a stored feed came from (`debian-tracker` → tracker,
/// `secdb-3.20-main` → secdb).
fn feed_source(name: &str) -> Option<advisory::Source> {
    Some(match name {
        "debian-tracker" => advisory::Source::Tracker,
        "osv-debian" => advisory::Source::OsvDebian,
        "osv-ubuntu" => advisory::Source::OsvUbuntu,
        "osv-alpine" => advisory::Source::OsvAlpine,
        name if name.starts_with("secdb-") => advisory::Source::Secdb,
        _ => return None,
    })
}

/// The original tag a drydock patch was built from, from its manifest's
/// annotations; `None` for anything drydock did not create.
fn patched_from(manifest: &[u8]) -> Option<String> {
    let manifest: serde_json::Value = serde_json::from_slice(manifest).ok()?;
    let annotations = manifest.get("annotations")?;
    annotations.get(patch::image::ANNOTATION_ORIGINAL)?;
    let base = annotations
        .get(patch::image::ANNOTATION_BASE_NAME)?
        .as_str()?;
    let name = base.split('@').next()?;
    let last = name.rsplit('/').next()?;
    last.split_once(':').map(|(_, tag)| tag.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_stored_feeds_to_their_online_sources() {
        assert_eq!(
            feed_source("debian-tracker"),
            Some(advisory::Source::Tracker)
        );
        assert_eq!(
            feed_source("secdb-3.20-main"),
            Some(advisory::Source::Secdb)
        );
        assert_eq!(feed_source("my-file-feed"), None);
    }

    #[test]
    fn recognises_only_drydock_patches() {
        let patched = br#"{"annotations":{"dev.drydock.patch.original":"sha256:ab","org.opencontainers.image.base.name":"127.0.0.1:5000/team/nginx:1.25"}}"#;
        assert_eq!(patched_from(patched).as_deref(), Some("1.25"));
        let upstream = br#"{"annotations":{"org.opencontainers.image.base.name":"docker.io/library/debian:12"}}"#;
        assert_eq!(patched_from(upstream), None);
        assert_eq!(patched_from(b"{}"), None);
    }
}
