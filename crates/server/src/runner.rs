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
use std::sync::{Arc, Mutex, PoisonError};

use environment::{
    Environment, EnvironmentError, Observer, PatchPolicy, PatchRequest, PatchResult,
    RegistryPolicy, TagChoice, Wants,
};
use oci::{ImageReference, RegistryClient};
use patch::patcher::Patcher;
use scan::{ScanError, Scanner};
use tokio::sync::Semaphore;
use workflow::{
    Config, DryRun, MatchedImage, PatchTagError, RepositoryTags, RunStatus, SkipReason, TaskKind,
};

use crate::store::{NewRun, Run, ScanPolicy, Store, StoreError, WorkflowRecord};

/// Why a workflow could not be listed, triggered or canceled.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The workflow database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The workflow's configuration does not parse.
    #[error(transparent)]
    Config(#[from] workflow::ConfigError),
    /// The configuration matches more images than a run may take.
    #[error(transparent)]
    TooManyImages(#[from] workflow::TooManyImages),
    /// A configured repository's name is not a valid reference on the registry.
    #[error("{registry}/{repository} is not a repository name")]
    Repository {
        /// The workflow's registry.
        registry: String,
        /// The configured repository (or repository and tag).
        repository: String,
        /// What is wrong with it.
        #[source]
        source: Box<oci::reference::ReferenceError>,
    },
    /// Listing a workflow's registry failed.
    #[error("listing {repository} on {registry}")]
    Registry {
        /// The workflow's registry.
        registry: String,
        /// The repository listed.
        repository: String,
        /// The registry client's error.
        #[source]
        source: Box<oci::Error>,
    },
    /// The environment could not provide a registry client.
    #[error(transparent)]
    Environment(#[from] EnvironmentError),
    /// No workflow has this name.
    #[error("no workflow named {0:?}")]
    NoWorkflow(String),
}

/// How the runner works, beside what the environment provides.
pub struct RunnerOptions {
    /// Images worked on at once.
    pub parallelism: usize,
    /// Before a trigger, online feeds of the advisory database older than
    /// this are fetched again.
    pub advisory_max_age: std::time::Duration,
}

/// Executes workflow runs: trigger → scan → patch, per image.
pub struct Runner {
    store: Arc<Store>,
    /// Where the scanner, the patcher and the publish sequence come from.
    environment: Arc<Environment>,
    options: RunnerOptions,
    patcher: Patcher,
    /// Runs canceled while working: their patch stops before writing.
    canceled: Mutex<HashSet<String>>,
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
    /// A runner over `store`, scanning and patching with `environment`'s pieces.
    pub fn new(
        store: Arc<Store>,
        environment: Arc<Environment>,
        options: RunnerOptions,
    ) -> Result<Arc<Runner>, EnvironmentError> {
        let patcher = environment.patcher(PatchPolicy::default())?;
        Ok(Arc::new(Runner {
            store,
            environment,
            permits: Semaphore::new(options.parallelism.max(1)),
            options,
            patcher,
            canceled: Mutex::default(),
            in_flight: Mutex::default(),
            tasks: Mutex::default(),
        }))
    }

    /// The workflow and run store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// How `record`'s registry is reached: as the workflow says, HTTPS
    /// unless it asks for plain HTTP (or the environment does for all).
    fn registry_policy(&self, record: &WorkflowRecord) -> RegistryPolicy {
        let policy = &self.environment.config().registry;
        RegistryPolicy {
            plain_http: policy.plain_http || record.plain_http,
            ..policy.clone()
        }
    }

    fn client(&self, record: &WorkflowRecord) -> Result<RegistryClient, RunnerError> {
        Ok(self
            .environment
            .registry_client(&self.registry_policy(record))?)
    }

    /// The registry's view of the configured repositories: their tags, and
    /// which tags are drydock's patches of which original.
    async fn listing(
        &self,
        record: &WorkflowRecord,
        config: &Config,
    ) -> Result<BTreeMap<String, RepositoryTags>, RunnerError> {
        let client = self.client(record)?;
        let invalid = |repository: String| {
            move |source| RunnerError::Repository {
                registry: record.registry.clone(),
                repository,
                source: Box::new(source),
            }
        };
        let mut listing = BTreeMap::new();
        for filter in config.enabled_repositories() {
            let repository = filter.repository();
            let reference = ImageReference::new(&record.registry, repository, None, None)
                .map_err(invalid(repository.to_string()))?;
            let tags = match client.list_tags(&reference).await {
                Ok(tags) => tags,
                Err(oci::Error::NotFound(_)) => continue,
                Err(source) => {
                    return Err(RunnerError::Registry {
                        registry: record.registry.clone(),
                        repository: repository.to_string(),
                        source: Box::new(source),
                    });
                }
            };
            let mut patch_origins = BTreeMap::new();
            for tag in &tags {
                let image = reference
                    .with_tag(tag)
                    .map_err(invalid(format!("{repository}:{tag}")))?;
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
    pub async fn trigger(self: &Arc<Self>, workflow: &str) -> Result<Run, RunnerError> {
        let record = self
            .store
            .workflow(workflow)
            .await?
            .ok_or_else(|| RunnerError::NoWorkflow(workflow.to_string()))?;
        self.store
            .set_last_trigger(workflow, self.environment.config().clock.now())
            .await?;
        let run = self
            .store
            .queue_run(workflow, TaskKind::Trigger, NewRun::default())
            .await?;
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
        self.canceled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }

    /// Cancels a workflow's queued and running runs; the schedule continues.
    pub async fn cancel(&self, workflow: &str) -> Result<Vec<String>, RunnerError> {
        let canceled = self.store.cancel_active(workflow).await?;
        let tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        let mut stopping = self.canceled.lock().unwrap_or_else(PoisonError::into_inner);
        for id in &canceled {
            if let Some(task) = tasks.get(id) {
                stopping.insert(id.clone());
                task.abort();
            }
        }
        Ok(canceled)
    }

    async fn log(&self, id: &str, line: &str) {
        if let Err(e) = self.store.log(id, line).await {
            tracing::warn!("run {id}: cannot write its log: {e}");
        }
    }

    async fn finish(&self, id: &str, status: RunStatus, reason: Option<&str>) {
        if let Some(reason) = reason {
            self.log(id, &format!("{status}: {reason}")).await;
        } else {
            self.log(id, &status.to_string()).await;
        }
        if let Err(e) = self.store.finish_run(id, status, reason).await {
            tracing::warn!("run {id}: cannot record its end: {e}");
        }
        self.done(id);
    }

    async fn run_trigger(self: Arc<Self>, id: &str, record: WorkflowRecord) {
        if !self.store.start_run(id).await.unwrap_or(false) {
            return self.done(id);
        }
        self.refresh_advisories(id).await;
        self.log(
            id,
            &format!("listing {} for workflow {}", record.registry, record.name),
        )
        .await;
        let dry_run = match self.dry_run(&record).await {
            Ok(dry_run) => dry_run,
            Err(e) => {
                return self
                    .finish(id, RunStatus::Failed, Some(&error_chain(&e)))
                    .await;
            }
        };
        for line in workflow::render_dry_run(&dry_run).lines() {
            self.log(id, line).await;
        }
        if let Err(e) = dry_run.check_image_limit() {
            return self
                .finish(id, RunStatus::Failed, Some(&e.to_string()))
                .await;
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
                )
                .await;
                continue;
            }
            let target = format!(
                "{}/{}:{}",
                record.registry,
                image.repository,
                image.scan_target()
            );
            let scan = match self
                .store
                .queue_run(
                    &record.name,
                    TaskKind::Scan,
                    NewRun {
                        parent: Some(id),
                        image: Some(&target),
                        repository: Some(&image.repository),
                        tag: Some(&image.tag),
                    },
                )
                .await
            {
                Ok(scan) => scan,
                Err(e) => {
                    self.release(&original);
                    return self
                        .finish(id, RunStatus::Failed, Some(&e.to_string()))
                        .await;
                }
            };
            self.log(id, &format!("queued scan {} of {target}", scan.id))
                .await;
            queued += 1;
            let runner = self.clone();
            let (record, trigger) = (record.clone(), id.to_string());
            let scan_id = scan.id.clone();
            self.spawn(&scan.id, async move {
                let _permit = runner.permits.acquire().await;
                runner
                    .run_image(&scan_id, &trigger, &record, &image, &target)
                    .await;
                release_freed_memory();
                runner.release(&original);
            });
        }
        self.finish(
            id,
            RunStatus::Succeeded,
            Some(&format!("{queued} image(s) queued for scanning")),
        )
        .await;
    }

    /// Fetches again the advisory database's online feeds that are older
    /// than the configured age. A feed that cannot be fetched keeps its
    /// stored copy (and the log says so); feeds imported from files are left
    /// alone, as is everything in offline mode.
    async fn refresh_advisories(&self, id: &str) {
        let path = self.environment.advisory_db();
        if !path.exists() {
            return;
        }
        if self.environment.config().offline {
            return self
                .log(id, "offline: scanning with the advisory database as stored")
                .await;
        }
        let opened = tokio::task::spawn_blocking({
            let environment = self.environment.clone();
            move || {
                let store = environment.advisory_store_for_update()?;
                let feeds = store.feeds().unwrap_or_default();
                Ok::<_, EnvironmentError>((store, feeds))
            }
        })
        .await;
        let (store, feeds) = match opened {
            Ok(Ok(opened)) => opened,
            Ok(Err(e)) => {
                return self
                    .log(id, &format!("the advisory database cannot be opened: {e}"))
                    .await;
            }
            Err(e) => {
                return self
                    .log(id, &format!("the advisory database cannot be opened: {e}"))
                    .await;
            }
        };
        let now = self.environment.config().clock.now().timestamp();
        let max_age = self.options.advisory_max_age.as_secs() as i64;
        let stale: std::collections::BTreeSet<advisory::Source> = feeds
            .into_iter()
            .filter(|f| {
                f.source.location.starts_with("http") && now - f.source.fetched_at > max_age
            })
            .filter_map(|f| feed_source(&f.source.name))
            .collect();
        if stale.is_empty() {
            return;
        }
        let fetcher = match self.environment.advisory_fetcher(
            BTreeMap::new(),
            advisory::feeds::fetch::DEFAULT_ALPINE_RELEASES
                .map(str::to_string)
                .to_vec(),
        ) {
            Ok(fetcher) => fetcher,
            Err(e) => {
                return self
                    .log(
                        id,
                        &format!("cannot refresh advisories: {}", error_chain(&e)),
                    )
                    .await;
            }
        };
        let store = Arc::new(Mutex::new(store));
        for source in stale {
            self.log(
                id,
                &format!(
                    "advisory feed {} is older than {}; fetching it again",
                    source.name(),
                    humantime::format_duration(self.options.advisory_max_age)
                ),
            )
            .await;
            let stored = match fetcher.fetch(source, &|_, _, _| {}).await {
                Ok(loaded) => {
                    let store = store.clone();
                    tokio::task::spawn_blocking(move || {
                        store
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .replace_feeds(&loaded)
                            .map(drop)
                    })
                    .await
                    .unwrap_or_else(|e| Err(advisory::Error::Task(e)))
                }
                Err(e) => Err(e),
            };
            match stored {
                Ok(()) => {
                    self.log(id, &format!("advisory feed {} refreshed", source.name()))
                        .await
                }
                Err(e) => {
                    self.log(
                        id,
                        &format!(
                            "advisory feed {} could not be refreshed ({}); using the stored copy",
                            source.name(),
                            error_chain(&e)
                        ),
                    )
                    .await
                }
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
    fn scanner(&self, record: &WorkflowRecord) -> Result<Scanner, EnvironmentError> {
        self.environment
            .patch_scanner(&self.registry_policy(record))
    }

    async fn scan(
        &self,
        id: &str,
        target: &str,
        scanner: &Scanner,
        policy: &ScanPolicy,
    ) -> Result<ScanVerdict, ScanError> {
        self.log(
            id,
            &format!("scanning {target} for fixable OS-package vulnerabilities"),
        )
        .await;
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
            Err(e) => return Err(e),
        };
        if report.os.as_ref().is_some_and(|os| os.eosl) {
            return Ok(ScanVerdict::Skip(SkipReason::EndOfLife.to_string()));
        }
        for result in &report.results {
            self.log(id, &format!("{}: {}", result.target, result.total_line()))
                .await;
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
            ).await;
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
        if !self.store.start_run(scan_id).await.unwrap_or(false) {
            return self.done(scan_id);
        }
        let scanner = match self.scanner(record) {
            Ok(scanner) => scanner,
            Err(e) => {
                return self
                    .finish(scan_id, RunStatus::Failed, Some(&error_chain(&e)))
                    .await;
            }
        };
        let fixable = match self.scan(scan_id, target, &scanner, &record.policy).await {
            Ok(ScanVerdict::Patch(count)) => count,
            Ok(ScanVerdict::Skip(reason)) => {
                return self
                    .finish(scan_id, RunStatus::Skipped, Some(&reason))
                    .await;
            }
            Err(e) => {
                return self
                    .finish(scan_id, RunStatus::Failed, Some(&error_chain(&e)))
                    .await;
            }
        };
        let original = format!("{}/{}:{}", record.registry, image.repository, image.tag);
        let next = match &image.next_patch {
            Ok(next) => next.name(),
            Err(PatchTagError::LimitReached { .. }) => {
                return self
                    .finish(
                        scan_id,
                        RunStatus::Skipped,
                        Some(&SkipReason::TagLimitReached.to_string()),
                    )
                    .await;
            }
            Err(e) => {
                return self
                    .finish(scan_id, RunStatus::Failed, Some(&e.to_string()))
                    .await;
            }
        };
        let patch = match self
            .store
            .queue_run(
                &record.name,
                TaskKind::Patch,
                NewRun {
                    parent: Some(trigger),
                    image: Some(&original),
                    repository: Some(&image.repository),
                    tag: Some(&image.tag),
                },
            )
            .await
        {
            Ok(patch) => patch,
            Err(e) => {
                return self
                    .finish(scan_id, RunStatus::Failed, Some(&e.to_string()))
                    .await;
            }
        };
        self.finish(
            scan_id,
            RunStatus::Succeeded,
            Some(&format!(
                "{fixable} fixable OS-package vulnerabilities; queued patch {}",
                patch.id
            )),
        )
        .await;
        // The patch runs in this task: the image's slot is held until it ends.
        if !self.store.start_run(&patch.id).await.unwrap_or(false) {
            return self.done(&patch.id);
        }
        match self
            .patch(&patch.id, record, &original, &next, &scanner)
            .await
        {
            Ok(Some(patched)) => {
                let _ = self.store.set_patched_image(&patch.id, &patched).await;
                self.finish(
                    &patch.id,
                    RunStatus::Succeeded,
                    Some(&format!("patched image pushed to {patched}")),
                ).await;
            }
            Ok(None) => self.finish(
                &patch.id,
                RunStatus::Skipped,
                Some("the configured suites have no fixed version yet for the vulnerable packages"),
            ).await,
            Err(e) => self.finish(&patch.id, RunStatus::Failed, Some(&error_chain(&e))).await,
        }
    }

    async fn patch(
        &self,
        id: &str,
        record: &WorkflowRecord,
        original: &str,
        next: &str,
        scanner: &Scanner,
    ) -> Result<Option<String>, EnvironmentError> {
        self.log(id, &format!("patching {original} into tag {next}"))
            .await;
        let request = PatchRequest {
            image: original.to_string(),
            wants: Wants::Scan,
            tag: TagChoice::Named(next.to_string()),
            output: None,
            scripts: record.policy.maintainer_scripts,
            dry_run: false,
            registry: self.registry_policy(record),
        };
        let observer = PatchObserver { runner: self, id };
        let result = self
            .environment
            .patch_and_publish(&self.patcher, scanner, &request, &observer)
            .await?;
        for platform in &result.outcome().platforms {
            for step in &platform.plan.steps {
                self.log(
                    id,
                    &format!(
                        "{} {} -> {}",
                        step.name,
                        step.from.as_deref().unwrap_or("(new)"),
                        step.to_version()
                    ),
                )
                .await;
            }
            for effect in platform.layer.iter().flat_map(|l| &l.script_effects) {
                self.log(
                    id,
                    &format!("{}: {}: {}", effect.handling, effect.package, effect.effect),
                )
                .await;
            }
        }
        Ok(match result {
            PatchResult::Planned { .. } | PatchResult::NothingToPatch { .. } => None,
            PatchResult::AlreadyPublished { written, .. }
            | PatchResult::Published { written, .. } => Some(written.name),
        })
    }
}

/// A patch run as the runner follows it: stopped before writing once canceled.
struct PatchObserver<'a> {
    runner: &'a Runner,
    id: &'a str,
}

impl Observer for PatchObserver<'_> {
    fn canceled(&self) -> bool {
        self.runner
            .canceled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(self.id)
    }
}

use oci::error_chain;

/// Returns the memory an image's work freed to the system (also called by
/// the scheduler's loop, so an idle server gives back what its API and
/// registry threads freed). A patch
/// decompresses packages and builds a layer in memory on a pool thread;
/// glibc keeps such freed memory in that thread's arena, so a long-lived
/// server that patched many images would otherwise stay at its peak.
#[allow(unsafe_code)] // glibc's malloc_trim has no safe wrapper
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
#[allow(unsafe_code)] // glibc's mallopt has no safe wrapper
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
