//! `fieldsync member`: create, list and revoke the organisation's coordinators, ops and
//! admins.

use fieldsync_client::exit::Failure;
use fieldsync_protocol::api::{MemberInfo, NewMember, Role};
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
        /// The member's id (from `fieldsync member list`), a unique prefix of it, or their
        /// name when no one else has it.
        id: String,
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

/// The member `key` names: a full id, a unique id prefix (4 characters or more), or a name
/// no other member has; only those of `role` when given.
pub fn find<'m>(
    members: &'m [MemberInfo],
    key: &str,
    role: Option<Role>,
) -> Result<&'m MemberInfo, Failure> {
    let key = key.trim();
    let candidates: Vec<&MemberInfo> = members
        .iter()
        .filter(|m| role.is_none_or(|r| m.role == r))
        .collect();
    let what = match role {
        Some(Role::Enumerator) => "enumerator",
        _ => "member",
    };
    if let Ok(id) = Uuid::parse_str(key) {
        return candidates
            .into_iter()
            .find(|m| m.id == id)
            .ok_or_else(|| Failure::NotFound(format!("no {what} {id} in this organisation")));
    }
    let by_prefix: Vec<&MemberInfo> = if key.len() >= 4 {
        candidates
            .iter()
            .copied()
            .filter(|m| m.id.to_string().starts_with(&key.to_ascii_lowercase()))
            .collect()
    } else {
        Vec::new()
    };
    let by_name: Vec<&MemberInfo> = candidates
        .iter()
        .copied()
        .filter(|m| m.name.eq_ignore_ascii_case(key))
        .collect();
    let matches = if by_prefix.is_empty() {
        by_name
    } else {
        by_prefix
    };
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(Failure::NotFound(format!(
            "no {what} has the id, id prefix or name {key:?}; `fieldsync {what} list` lists them"
        ))),
        many => Err(Failure::Invalid(format!(
            "{} {what}s match {key:?} ({}); give more of the id",
            many.len(),
            many.iter()
                .map(|m| m.id.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
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
            let id = find(&client.members()?, &id, None)?.id;
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
