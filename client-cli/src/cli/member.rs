//! `fieldsync member`: create, list and revoke the organisation's coordinators, ops and
//! admins.

use fieldsync_protocol::api::{NewMember, Role};
use uuid::Uuid;

use super::Settings;
use super::enroll::non_empty;

/// Manage the organisation's members (coordinators, ops, admins).
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create a member and print their one-time login token (shown only once).
    Add {
        /// The member's name.
        #[arg(value_parser = non_empty)]
        name: String,
        /// What the member may do.
        #[arg(long, value_enum)]
        role: MemberRole,
        /// Print only the login token, for scripts: `TOKEN=$(fieldsync member add NAME --role ops --quiet)`.
        #[arg(long)]
        quiet: bool,
    },
    /// List the organisation's members and enumerators.
    List,
    /// Revoke a member or device and every token it holds.
    Revoke {
        /// The member's id (from `fieldsync member list`).
        id: Uuid,
    },
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum MemberRole {
    Coordinator,
    Ops,
    Admin,
}

impl From<MemberRole> for Role {
    fn from(r: MemberRole) -> Role {
        match r {
            MemberRole::Coordinator => Role::Coordinator,
            MemberRole::Ops => Role::Ops,
            MemberRole::Admin => Role::Admin,
        }
    }
}

pub fn run(command: Command, s: &Settings) -> anyhow::Result<u8> {
    let store = s.open_store()?;
    let client = super::api(&store)?;
    match command {
        Command::Add { name, role, quiet } => {
            let created = client.create_member(&NewMember {
                name,
                role: role.into(),
            })?;
            if quiet {
                outln!("{}", created.one_time_secret);
            } else if s.json {
                s.print_json(&serde_json::json!({
                    "id": created.id,
                    "name": created.name,
                    "role": created.role,
                    "token": created.one_time_secret,
                }))?;
            } else {
                outln!(
                    "created {} {} with id {}",
                    created.role,
                    created.name,
                    created.id
                );
                outln!(
                    "one-time login token (shown only once): {}",
                    created.one_time_secret
                );
                outln!(
                    "they sign in with: fieldsync login --server {} --token <TOKEN>",
                    client.base()
                );
            }
        }
        Command::List => {
            let members = client.members()?;
            if s.json {
                s.print_json(&members)?;
            } else {
                outln!("{:<36}  {:<11}  {:<7}  NAME", "ID", "ROLE", "STATE");
                for m in &members {
                    let state = if m.revoked { "revoked" } else { "active" };
                    outln!(
                        "{:<36}  {:<11}  {:<7}  {}",
                        m.id,
                        m.role.as_str(),
                        state,
                        m.name
                    );
                }
            }
        }
        Command::Revoke { id } => {
            client.revoke_member(&id)?;
            if s.json {
                s.print_json(&serde_json::json!({ "id": id, "revoked": true }))?;
            } else {
                outln!("revoked {id} and all its tokens");
            }
        }
    }
    Ok(0)
}
