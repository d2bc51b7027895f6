//! What to try next, for the errors a command-line flag gets past.
//!
//! The library crates say what went wrong and never name a flag; this
//! module knows which flag answers which error and adds it as a `hint:`
//! line under the error.

/// The hint for the first error in `error`'s chain that a flag answers.
pub fn for_error(error: &anyhow::Error) -> Option<&'static str> {
    error.chain().find_map(|cause| {
        // The environment's errors are transparent over the pieces' own:
        // the piece's error is the environment error, not a cause of it.
        if let Some(error) = cause.downcast_ref::<environment::EnvironmentError>() {
            return environment_hint(error);
        }
        if let Some(error) = cause.downcast_ref::<patch::PatchError>() {
            return patch_hint(error);
        }
        if let Some(error) = cause.downcast_ref::<advisory::Error>() {
            return advisory_hint(error);
        }
        if let Some(error) = cause.downcast_ref::<oci::AuthError>() {
            return registry_hint(error);
        }
        None
    })
}

fn environment_hint(error: &environment::EnvironmentError) -> Option<&'static str> {
    use environment::EnvironmentError;
    match error {
        EnvironmentError::Patch(error) => patch_hint(error),
        EnvironmentError::SecurityRepo(error) => advisory_hint(error),
        EnvironmentError::AdvisoryDatabase { source, .. } => advisory_hint(source),
        _ => None,
    }
}

fn patch_hint(error: &patch::PatchError) -> Option<&'static str> {
    use patch::PatchError;
    Some(match error {
        PatchError::EndOfLife { .. } => {
            "pass --allow-eol to patch from what the release's suites still hold"
        }
        PatchError::Unsigned { .. } => {
            "pass --allow-unsigned (or mark the entry [trusted=yes] in the image) to use the suite anyway"
        }
        PatchError::NoPlatform { .. } => "check the platforms given with --platform",
        _ => return None,
    })
}

fn advisory_hint(error: &advisory::Error) -> Option<&'static str> {
    use advisory::Error;
    Some(match error {
        Error::UnknownKind { .. } => "name the format with --kind tracker|osv|secdb",
        Error::WrongFeed { .. } | Error::Status { .. } => {
            "check the URL, or point --mirror SOURCE=BASE_URL at a reachable copy"
        }
        Error::NewerSchema { .. } => "upgrade drydock, or use another database with --db",
        _ => return None,
    })
}

fn registry_hint(error: &oci::AuthError) -> Option<&'static str> {
    use oci::AuthError;
    Some(match error {
        AuthError::Refused | AuthError::CredentialsRequired => {
            "log in (~/.docker/config.json, or containers' auth.json), or pass --src-creds/--dest-creds USER:PASSWORD to drydock import"
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_hint_anywhere_in_the_chain() {
        let error = anyhow::Error::from(patch::PatchError::NoPlatform {
            image: "app:1".to_string(),
        })
        .context("patching app:1");
        assert_eq!(
            for_error(&error),
            Some("check the platforms given with --platform")
        );
        assert_eq!(for_error(&anyhow::anyhow!("something else")), None);
        let through_the_environment = anyhow::Error::from(environment::EnvironmentError::from(
            patch::PatchError::NoPlatform {
                image: "app:1".to_string(),
            },
        ));
        assert_eq!(
            for_error(&through_the_environment),
            Some("check the platforms given with --platform")
        );
    }
}
