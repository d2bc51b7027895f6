//! `drydock serve` and `drydock gc`: wiring of the embedded registry.

#[derive(clap::Args)]
pub struct ServeArgs {}

#[derive(clap::Args)]
pub struct GcArgs {}

pub async fn serve(_args: ServeArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}

pub async fn gc(_args: GcArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
