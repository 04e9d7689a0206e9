//! `fieldsync whoami`: ask the server who this client's token belongs to.

use super::Settings;

/// Show who this client is signed in as, according to the server.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args, s: &Settings) -> anyhow::Result<u8> {
    let store = s.open_store()?;
    let me = super::api(&store)?.me()?;
    if s.json {
        s.print_json(&me)?;
    } else {
        outln!(
            "{} ({}) in {} [{}]",
            me.name,
            me.role,
            me.org_name,
            me.region
        );
        outln!("member id: {}", me.principal_id);
        outln!("organisation id: {}", me.org_id);
        outln!(
            "support access: {}",
            if me.support_access { "on" } else { "off" }
        );
    }
    Ok(0)
}
