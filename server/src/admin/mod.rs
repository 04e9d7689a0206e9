//! `fieldsync-server admin …`: administration from the command line, on the server's data
//! directory (or its PostgreSQL database), without a running server.

use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};
use fieldsync_server::keys::KeyRing;
use fieldsync_server::service;
use fieldsync_server::settings::DataArgs;
use fieldsync_server::storage::{AuditEvent, Db, ErasureCause, StorageError};

use crate::UsageError;

mod backup;
mod rotate;

#[derive(Subcommand, Debug)]
pub(crate) enum AdminCommand {
    /// Create an organisation and print its id and a one-time admin login token.
    CreateOrg(CreateOrgArgs),
    /// List the organisations on this server: id, name, region, support switch, live members.
    ListOrgs(ListOrgsArgs),
    /// Create a support staff member (belongs to no organisation) and print a one-time token.
    CreateSupport(CreateSupportArgs),
    /// Revoke a support agent and every token it holds.
    RevokeSupport(RevokeSupportArgs),
    /// Erase every response past its survey's retention period now (the server also does
    /// this on its own, see `serve --purge-every`).
    Purge(PurgeArgs),
    /// Write the list of erased responses (ids only, JSON Lines) to keep beside backups: a
    /// restored backup must have them erased again before it serves (`reapply-erasures`).
    Erasures(ErasuresArgs),
    /// Erase again, in a restored database, every response of a list written by `erasures`
    /// (and remember as erased those it does not hold, so no device can push them back).
    ReapplyErasures(ReapplyArgs),
    /// Copy the SQLite database to a backup file while the server runs (one consistent
    /// snapshot, integrity checked). The master key is not in it: keep it apart.
    Backup(backup::BackupArgs),
    /// Make a backup the database of --data (a new directory, or --replace), or mark a
    /// database restored by other means (--in-place); devices then push again what it lacks.
    Restore(backup::RestoreArgs),
    /// Check a database or a backup: SQLite's integrity check, the master key, every
    /// organisation's key, a sample of documents, every audit chain.
    Verify(backup::VerifyArgs),
    /// Give the data directory a new master key (the server stopped): every organisation key
    /// is rewrapped, nothing else changes.
    RotateMasterKey(rotate::RotateArgs),
}

#[derive(Args, Debug)]
pub(crate) struct ListOrgsArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub(crate) struct ErasuresArgs {
    /// The file to write.
    #[arg(long)]
    out: std::path::PathBuf,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Args, Debug)]
pub(crate) struct ReapplyArgs {
    /// A list written by `fieldsync-server admin erasures`.
    #[arg(long)]
    from: std::path::PathBuf,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Args, Debug)]
pub(crate) struct PurgeArgs {
    /// List what would be erased, and erase nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    data: DataArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub(crate) struct RevokeSupportArgs {
    /// The support agent's id (printed by create-support).
    #[arg(long)]
    id: uuid::Uuid,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Args, Debug)]
pub(crate) struct CreateOrgArgs {
    /// The organisation's name.
    #[arg(long)]
    name: String,
    #[command(flatten)]
    data: DataArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Print only the one-time admin token, for scripts: `TOKEN=$(fieldsync-server admin create-org --name X --quiet)`.
    #[arg(long, conflicts_with = "json")]
    quiet: bool,
}

#[derive(Args, Debug)]
pub(crate) struct CreateSupportArgs {
    /// The support agent's name.
    #[arg(long)]
    name: String,
    #[command(flatten)]
    data: DataArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Run one administration command.
pub(crate) fn run(command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::CreateOrg(args) => create_org(args),
        AdminCommand::ListOrgs(args) => list_orgs(args),
        AdminCommand::CreateSupport(args) => create_support(args),
        AdminCommand::RevokeSupport(args) => revoke_support(args),
        AdminCommand::Purge(args) => purge(args),
        AdminCommand::Erasures(args) => erasures(args),
        AdminCommand::ReapplyErasures(args) => reapply_erasures(args),
        AdminCommand::Backup(args) => backup::backup(args),
        AdminCommand::Restore(args) => backup::restore(args),
        AdminCommand::Verify(args) => backup::verify(args),
        AdminCommand::RotateMasterKey(args) => rotate::rotate(args),
    }
}

fn create_org(args: CreateOrgArgs) -> anyhow::Result<()> {
    args.data.validate().map_err(UsageError)?;
    let region = args.data.region.clone();
    let name = args.name.trim().to_owned();
    if name.is_empty() || name.len() > 200 {
        return Err(UsageError("--name must be 1 to 200 characters".into()).into());
    }
    let created = offline(&args.data, |db, keys| {
        let (name, region) = (name.clone(), region.clone());
        async move { service::orgs::create(&db, &keys, &name, &region).await }
    })?;
    if args.quiet {
        println!("{}", created.admin_token);
    } else if args.json {
        println!(
            "{}",
            serde_json::json!({
                "org_id": created.org_id,
                "name": name,
                "region": region,
                "admin_id": created.admin_id,
                "admin_token": created.admin_token,
            })
        );
    } else {
        println!("organisation: {name}");
        println!("org id:       {}", created.org_id);
        println!("region:       {region}");
        println!("admin token:  {}", created.admin_token);
        println!();
        println!(
            "The admin token works once: run `fieldsync login --server URL --token TOKEN` to start a session."
        );
    }
    Ok(())
}

fn list_orgs(args: ListOrgsArgs) -> anyhow::Result<()> {
    args.data.validate().map_err(UsageError)?;
    let orgs = offline(&args.data, |db, _| async move { db.orgs().await })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&orgs)?);
        return Ok(());
    }
    if orgs.is_empty() {
        println!("no organisations; `fieldsync-server admin create-org --name NAME` creates one");
        return Ok(());
    }
    println!(
        "{:<36}  {:<14}  {:<7}  {:>7}  NAME",
        "ID", "REGION", "SUPPORT", "MEMBERS"
    );
    for o in &orgs {
        println!(
            "{:<36}  {:<14}  {:<7}  {:>7}  {}",
            o.id,
            o.region,
            if o.support_access { "on" } else { "off" },
            o.active_principals,
            o.name
        );
    }
    Ok(())
}

fn create_support(args: CreateSupportArgs) -> anyhow::Result<()> {
    args.data.validate().map_err(UsageError)?;
    let name = args.name.trim().to_owned();
    if name.is_empty() || name.len() > 200 {
        return Err(UsageError("--name must be 1 to 200 characters".into()).into());
    }
    let (id, token) = offline(&args.data, |db, _| {
        let name = name.clone();
        async move { service::orgs::create_support(&db, &name).await }
    })?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "support_id": id, "name": name, "login_token": token })
        );
    } else {
        println!("support agent: {name} ({id})");
        println!("login token:   {token}");
    }
    Ok(())
}

fn revoke_support(args: RevokeSupportArgs) -> anyhow::Result<()> {
    args.data.validate().map_err(UsageError)?;
    let id = args.id.to_string();
    if offline(&args.data, |db, _| async move {
        service::orgs::revoke_support(&db, &id).await
    })? {
        println!("revoked support agent {} and all its tokens", args.id);
        Ok(())
    } else {
        Err(UsageError(format!(
            "no support agent {}; check the id printed by create-support",
            args.id
        ))
        .into())
    }
}

fn purge(args: PurgeArgs) -> anyhow::Result<()> {
    args.data.validate().map_err(UsageError)?;
    let now = fieldsync_server::storage::now_ms();
    if args.dry_run {
        let due = offline(&args.data, |db, _| async move {
            service::rights::expired(&db, now, u32::MAX).await
        })?;
        if args.json {
            println!("{}", serde_json::json!({ "would_erase": due }));
        } else {
            println!(
                "{} response(s) are past their survey's retention period:",
                due.len()
            );
            for d in &due {
                println!(
                    "  {} (survey {}, organisation {})",
                    d.doc_id, d.survey_id, d.org_id
                );
            }
            println!("nothing was erased (dry run); run without --dry-run to erase them");
        }
        return Ok(());
    }
    let erased = offline(&args.data, |db, _| async move {
        service::rights::purge(&db, now, "cli").await
    })?;
    if args.json {
        println!("{}", serde_json::json!({ "erased": erased }));
    } else {
        println!("erased {erased} response(s) past their survey's retention period");
    }
    Ok(())
}

fn erasures(args: ErasuresArgs) -> anyhow::Result<()> {
    args.data.validate().map_err(UsageError)?;
    let all = offline(&args.data, |db, _| async move {
        let mut all = Vec::new();
        let mut after = String::new();
        loop {
            let page = db.erased(&after, 10_000).await?;
            let Some(last) = page.last() else { break };
            after = last.doc_id.clone();
            all.extend(page);
        }
        Ok(all)
    })?;
    let mut text = String::new();
    for e in &all {
        text.push_str(&serde_json::to_string(e)?);
        text.push('\n');
    }
    std::fs::write(&args.out, text)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!(
        "wrote {} erased response id(s) to {}; keep it with the backups",
        all.len(),
        args.out.display()
    );
    Ok(())
}

fn reapply_erasures(args: ReapplyArgs) -> anyhow::Result<()> {
    args.data.validate().map_err(UsageError)?;
    reapply_erasures_from(&args.data, &args.from)
}

/// Erase again every response of a list `admin erasures` wrote.
pub(crate) fn reapply_erasures_from(data: &DataArgs, from: &std::path::Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(from).with_context(|| format!("cannot read {}", from.display()))?;
    let mut by_org: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let e: fieldsync_server::storage::ErasedRecord =
            serde_json::from_str(line).map_err(|e| {
                UsageError(format!(
                    "{} line {}: {e}; give the file `fieldsync-server admin erasures` wrote",
                    from.display(),
                    i + 1
                ))
            })?;
        by_org.entry(e.org_id).or_default().push(e.doc_id);
    }
    let count = offline(data, |db, _| async move {
        let mut n = 0;
        for (org_id, ids) in by_org {
            for chunk in ids.chunks(1_000) {
                let audit = AuditEvent::operator(Some(&org_id), "erasures_reapplied")
                    .detail(format!("{} response(s)", chunk.len()));
                n += db
                    .erase(&org_id, chunk.to_vec(), ErasureCause::Restore, audit)
                    .await?
                    .len();
            }
        }
        Ok(n)
    })?;
    println!("{count} response(s) erased again or remembered as erased; the rest were already");
    Ok(())
}

/// Run one storage operation of a command-line tool on the server's database and keys,
/// without a server.
pub(crate) fn offline<T, F, Fut>(data: &DataArgs, f: F) -> anyhow::Result<T>
where
    F: FnOnce(Db, Arc<KeyRing>) -> Fut,
    Fut: std::future::Future<Output = Result<T, StorageError>>,
{
    let database = data.database().map_err(UsageError)?;
    std::fs::create_dir_all(&data.data_dir)
        .with_context(|| format!("cannot create {}", data.data_dir.display()))?;
    let keys = Arc::new(KeyRing::load_or_create(&data.master_key_path())?);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let db = fieldsync_server::storage::open(&database, keys.clone(), &data.region).await?;
        Ok(f(db, keys).await?)
    })
}
