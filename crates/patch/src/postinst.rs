//! Owners, modes and file capabilities that maintainer scripts set, read
//! from the scripts without running them.
//!
//! Owns finding, in a package's `postinst`, the commands that give the
//! package's own files their final owner, group, mode or capabilities
//! (`chown`, `chgrp`, `chmod`, `setcap`; e.g. `ssh-agent`'s `_ssh` group and
//! setgid bit, `sudoers`' 0440, `ping`'s `cap_net_raw`) with literal
//! operands, after simple variable assignments (`PROGRAM=/bin/ping`,
//! `PROGRAM=$(dpkg-divert --truename /bin/ping)`). Conditions around them
//! are not evaluated: the settings apply to the package's files as the
//! script's normal path (`configure`) applies them; a stat override for the
//! path wins, as the scripts' `dpkg-statoverride --list` checks make it.
//! Recursive forms and operands that stay unresolved are ignored. Pure.

use std::collections::BTreeMap;

/// What scripts set on one path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Setting {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Mode changes in script order (`2755`, `u-s`).
    pub modes: Vec<String>,
    /// The `security.capability` xattr value.
    pub capability: Option<Vec<u8>>,
    /// The commands, as the report shows them.
    pub commands: Vec<String>,
}

impl Setting {
    /// `mode` (permission bits) after the script's changes.
    pub fn apply_mode(&self, mode: u32) -> u32 {
        self.modes.iter().fold(mode, |mode, change| {
            apply_mode_change(mode, change).unwrap_or(mode)
        })
    }
}

/// Linux capability numbers by name (`linux/capability.h`).
const CAPABILITIES: &[&str] = &[
    "cap_chown",
    "cap_dac_override",
    "cap_dac_read_search",
    "cap_fowner",
    "cap_fsetid",
    "cap_kill",
    "cap_setgid",
    "cap_setuid",
    "cap_setpcap",
    "cap_linux_immutable",
    "cap_net_bind_service",
    "cap_net_broadcast",
    "cap_net_admin",
    "cap_net_raw",
    "cap_ipc_lock",
    "cap_ipc_owner",
    "cap_sys_module",
    "cap_sys_rawio",
    "cap_sys_chroot",
    "cap_sys_ptrace",
    "cap_sys_pacct",
    "cap_sys_admin",
    "cap_sys_boot",
    "cap_sys_nice",
    "cap_sys_resource",
    "cap_sys_time",
    "cap_sys_tty_config",
    "cap_mknod",
    "cap_lease",
    "cap_audit_write",
    "cap_audit_control",
    "cap_setfcap",
    "cap_mac_override",
    "cap_mac_admin",
    "cap_syslog",
    "cap_wake_alarm",
    "cap_block_suspend",
    "cap_audit_read",
    "cap_perfmon",
    "cap_bpf",
    "cap_checkpoint_restore",
];

/// The `security.capability` value (`vfs_cap_data`, revision 2) `setcap`
/// writes for a text like `cap_net_raw+ep` or `cap_a,cap_b=eip`.
pub fn capability_xattr(text: &str) -> Option<Vec<u8>> {
    let split = text.find(['+', '='])?;
    let (names, flags) = text.split_at(split);
    let flags = &flags[1..];
    if flags.is_empty() || !flags.chars().all(|c| "eip".contains(c)) {
        return None;
    }
    let mut bits: u64 = 0;
    for name in names.split(',') {
        let number = CAPABILITIES
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name.trim()))?;
        bits |= 1 << number;
    }
    let permitted = if flags.contains('p') { bits } else { 0 };
    let inheritable = if flags.contains('i') { bits } else { 0 };
    let magic: u32 = 0x0200_0000 | u32::from(flags.contains('e'));
    let mut value = magic.to_le_bytes().to_vec();
    for half in [0, 32] {
        value.extend(((permitted >> half) as u32).to_le_bytes());
        value.extend(((inheritable >> half) as u32).to_le_bytes());
    }
    Some(value)
}

/// `chmod`'s mode operand applied to `mode`: octal, or symbolic clauses
/// (`u-s`, `g+s,o-w`, `a=rx`); `None` when it is neither.
pub fn apply_mode_change(mode: u32, change: &str) -> Option<u32> {
    if !change.is_empty() && change.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return u32::from_str_radix(change, 8).ok().map(|m| m & 0o7777);
    }
    let mut mode = mode;
    for clause in change.split(',') {
        let op_at = clause.find(['+', '-', '='])?;
        let (who, rest) = clause.split_at(op_at);
        let (op, perms) = rest.split_at(1);
        let who = if who.is_empty() || who.contains('a') {
            "ugo"
        } else {
            who
        };
        let mut mask = 0;
        for w in who.chars() {
            for p in perms.chars() {
                mask |= match (w, p) {
                    ('u', 'r') => 0o400,
                    ('u', 'w') => 0o200,
                    ('u', 'x') => 0o100,
                    ('g', 'r') => 0o040,
                    ('g', 'w') => 0o020,
                    ('g', 'x') => 0o010,
                    ('o', 'r') => 0o004,
                    ('o', 'w') => 0o002,
                    ('o', 'x') => 0o001,
                    ('u', 's') => 0o4000,
                    ('g', 's') => 0o2000,
                    ('o', 't') => 0o1000,
                    ('u' | 'g', 't') | ('o', 's') => 0,
                    _ => return None,
                };
            }
        }
        mode = match op {
            "+" => mode | mask,
            "-" => mode & !mask,
            _ => {
                let cleared: u32 = who.chars().fold(0, |m, w| {
                    m | match w {
                        'u' => 0o4700,
                        'g' => 0o2070,
                        _ => 0o1007,
                    }
                });
                (mode & !cleared) | mask
            }
        };
    }
    Some(mode)
}

/// The settings a script makes, by absolute path; names of users and
/// groups resolved with the image's `passwd` and `group` (a name the image
/// does not have yet leaves that part out).
pub fn settings(script: &str, passwd: &str, group: &str) -> BTreeMap<String, Setting> {
    let id = |table: &str, name: &str| -> Option<u32> {
        if let Ok(number) = name.parse() {
            return Some(number);
        }
        table.lines().find_map(|line| {
            let mut fields = line.split(':');
            (fields.next() == Some(name))
                .then(|| fields.nth(1)?.parse().ok())
                .flatten()
        })
    };
    let mut variables: BTreeMap<String, String> = BTreeMap::new();
    let mut found: BTreeMap<String, Setting> = BTreeMap::new();
    for line in script.lines() {
        let line = line.split(" #").next().unwrap_or(line).trim();
        if line.starts_with('#') {
            continue;
        }
        // NAME=/path or NAME=$(dpkg-divert --truename /path)
        if let Some((name, value)) = line.split_once('=')
            && !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            let value = value.trim_matches(['"', '\'']);
            let value = value
                .strip_prefix("$(dpkg-divert --truename ")
                .and_then(|v| v.strip_suffix(')'))
                .unwrap_or(value);
            if value.starts_with('/') && !value.contains(['$', ' ', '`']) {
                variables.insert(name.to_string(), value.to_string());
            }
            continue;
        }
        let words: Vec<String> = line
            .split(|c: char| c.is_whitespace() || c == ';')
            .filter(|w| !w.is_empty())
            .map(|w| {
                let w = w.trim_matches(['"', '\'']);
                let bare = w.trim_start_matches('$').trim_matches(['{', '}']);
                match variables.get(bare) {
                    Some(value) if w.starts_with('$') => value.clone(),
                    _ => w.to_string(),
                }
            })
            .collect();
        for (at, word) in words.iter().enumerate() {
            if !["chmod", "chown", "chgrp", "setcap"].contains(&word.as_str()) {
                continue;
            }
            let operands: Vec<&String> = words[at + 1..]
                .iter()
                .take_while(|w| {
                    ![
                        "then",
                        "&&",
                        "||",
                        "|",
                        "fi",
                        "else",
                        ">/dev/null",
                        "2>/dev/null",
                    ]
                    .contains(&w.as_str())
                        && !w.starts_with('>')
                })
                .collect();
            if operands.iter().any(|w| w.starts_with('-')) {
                continue; // -R and other options: not a plain setting
            }
            let [what, paths @ ..] = operands.as_slice() else {
                continue;
            };
            if paths.is_empty() || paths.iter().any(|p| !p.starts_with('/') || p.contains('$')) {
                continue;
            }
            for path in paths {
                let setting = found.entry(path.to_string()).or_default();
                let known = match word.as_str() {
                    "chmod" if apply_mode_change(0o755, what).is_some() => {
                        setting.modes.push(what.to_string());
                        true
                    }
                    "chown" => {
                        let (user, group_name) = what.split_once([':', '.']).unwrap_or((what, ""));
                        setting.uid = id(passwd, user).or(setting.uid);
                        if !group_name.is_empty() {
                            setting.gid = id(group, group_name).or(setting.gid);
                        }
                        true
                    }
                    "chgrp" => {
                        setting.gid = id(group, what).or(setting.gid);
                        true
                    }
                    "setcap" => match capability_xattr(what) {
                        Some(value) => {
                            setting.capability = Some(value);
                            true
                        }
                        None => false,
                    },
                    _ => false,
                };
                if known {
                    setting.commands.push(format!("{word} {what} {path}"));
                }
            }
        }
    }
    found.retain(|_, s| !s.commands.is_empty());
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const GROUP: &str = "root:x:0:\n_ssh:x:101:\n";
    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n";

    #[test]
    fn reads_the_settings_of_real_scripts() {
        // openssh-client, sudo and iputils-ping in Ubuntu 24.04.
        let script = "set_ssh_agent_permissions() {\n\
            \tif ! dpkg-statoverride --list /usr/bin/ssh-agent >/dev/null; then\n\
            \t\tchgrp _ssh /usr/bin/ssh-agent\n\t\tchmod 2755 /usr/bin/ssh-agent\n\tfi\n}\n\
            if [ -f /etc/sudoers ];then\n    chown root:root /etc/sudoers\n    chmod 440 /etc/sudoers\nfi\n\
            PROGRAM=$(dpkg-divert --truename /bin/ping)\n\
            if [ \"$1\" = configure ]; then\n    if setcap cap_net_raw+ep $PROGRAM; then\n        chmod u-s $PROGRAM\n    fi\nfi\n\
            chown -R root:root /var/lib/x\n";
        let found = settings(script, PASSWD, GROUP);
        let agent = &found["/usr/bin/ssh-agent"];
        assert_eq!((agent.gid, agent.apply_mode(0o755)), (Some(101), 0o2755));
        let sudoers = &found["/etc/sudoers"];
        assert_eq!((sudoers.uid, sudoers.gid), (Some(0), Some(0)));
        assert_eq!(sudoers.apply_mode(0o644), 0o440);
        let ping = &found["/bin/ping"];
        assert_eq!(
            ping.capability.as_deref(),
            Some(
                &[
                    1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
                ][..]
            )
        );
        assert_eq!(ping.apply_mode(0o4755), 0o755);
        assert!(
            !found.contains_key("/var/lib/x"),
            "recursive forms are ignored"
        );
    }

    #[test]
    fn modes_and_capabilities_follow_chmod_and_setcap() {
        assert_eq!(apply_mode_change(0o755, "g+s"), Some(0o2755));
        assert_eq!(apply_mode_change(0o4755, "u-s,o-rx"), Some(0o750));
        assert_eq!(apply_mode_change(0o777, "go=r"), Some(0o744));
        assert_eq!(apply_mode_change(0o755, "0640"), Some(0o640));
        assert_eq!(apply_mode_change(0o755, "u+q"), None);
        let both = capability_xattr("cap_net_admin,cap_net_raw=eip").unwrap();
        assert_eq!(both[..4], [1, 0, 0, 2]);
        assert_eq!(
            u32::from_le_bytes(both[4..8].try_into().unwrap()),
            (1 << 12) | (1 << 13)
        );
        assert_eq!(both[4..8], both[8..12]);
        assert!(capability_xattr("cap_unknown+ep").is_none());
    }
}
