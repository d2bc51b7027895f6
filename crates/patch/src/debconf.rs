//! debconf's database as the upgraded packages' scripts leave it.
//!
//! Owns reading and writing debconf's file databases (`config.dat`, the
//! answers; `templates.dat`, the templates) in debconf's own format
//! (`Debconf::Format::822`: items in byte order, fields lowercased and
//! written `Ucfirst`, newlines escaped as `\n`), registering a package's
//! `templates` as debconf's frontend does when the package's scripts start
//! (`Debconf::Template::load`: every field replaced, a question per new
//! template, the package added to its questions' owners), and the answers
//! `ca-certificates`' `config` script and `postinst` record. Pure; written
//! here because no crate reads debconf's format.

use std::collections::{BTreeMap, BTreeSet};

/// debconf's answers.
pub const CONFIG: &str = "var/cache/debconf/config.dat";
/// debconf's templates.
pub const TEMPLATES: &str = "var/cache/debconf/templates.dat";

/// One item of a database: a question (`config.dat`) or a template (`templates.dat`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Item {
    /// Lowercased field name → value (newlines unescaped).
    pub fields: BTreeMap<String, String>,
    pub owners: BTreeSet<String>,
    /// Flags set to true (`seen`).
    pub flags: BTreeSet<String>,
    pub variables: BTreeMap<String, String>,
}

/// A whole file database, by item name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Database {
    pub items: BTreeMap<String, Item>,
}

impl Database {
    /// Reads a database as `Debconf::Format::822` does.
    pub fn parse(text: &str) -> Database {
        let mut items = BTreeMap::new();
        for record in text.split("\n\n") {
            let mut name = None;
            let mut item = Item::default();
            let mut in_variables = false;
            for line in record.lines().filter(|l| !l.is_empty()) {
                if in_variables {
                    if line.starts_with(char::is_whitespace) {
                        let line = line.trim_start();
                        let (variable, value) = match line.split_once('=') {
                            Some((variable, value)) => (
                                variable.trim_end(),
                                value.strip_prefix(' ').unwrap_or(value),
                            ),
                            None => (line, ""),
                        };
                        item.variables
                            .insert(variable.to_string(), value.replace("\\n", "\n"));
                        continue;
                    }
                    in_variables = false;
                }
                let (key, value) = match line.split_once(':') {
                    Some((key, value)) => (
                        key.to_lowercase(),
                        value.strip_prefix(char::is_whitespace).unwrap_or(value),
                    ),
                    None => (line.to_lowercase(), ""),
                };
                match key.as_str() {
                    "owners" => item.owners.extend(words(value)),
                    "flags" => item.flags.extend(words(value)),
                    "variables" => in_variables = true,
                    "name" => name = Some(value.to_string()),
                    "" => {}
                    _ => {
                        item.fields.insert(key, value.replace("\\n", "\n"));
                    }
                }
            }
            if let Some(name) = name {
                items.insert(name, item);
            }
        }
        Database { items }
    }

    /// Writes the database as `Debconf::DbDriver::File` saves it.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, item) in &self.items {
            out.push_str(&format!("Name: {name}\n"));
            for (field, value) in &item.fields {
                out.push_str(&format!(
                    "{}: {}\n",
                    upper_first(field),
                    value.replace('\n', "\\n")
                ));
            }
            if !item.owners.is_empty() {
                out.push_str(&format!("Owners: {}\n", joined(&item.owners)));
            }
            if !item.flags.is_empty() {
                out.push_str(&format!("Flags: {}\n", joined(&item.flags)));
            }
            if !item.variables.is_empty() {
                out.push_str("Variables:\n");
                for (variable, value) in &item.variables {
                    out.push_str(&format!(" {variable} = {}\n", value.replace('\n', "\\n")));
                }
            }
            out.push('\n');
        }
        out
    }

    /// A question's answer.
    pub fn value(&self, question: &str) -> Option<&str> {
        self.items
            .get(question)?
            .fields
            .get("value")
            .map(String::as_str)
    }
}

fn words(list: &str) -> impl Iterator<Item = String> + '_ {
    list.split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
}

fn joined(set: &BTreeSet<String>) -> String {
    set.iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

fn upper_first(field: &str) -> String {
    let mut chars = field.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// One template of a package's `templates` file: lowercased field → value,
/// extended descriptions as `extended_<field>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub name: String,
    pub fields: BTreeMap<String, String>,
}

/// Parses a `templates` control file as `Debconf::Template::load` does;
/// `None` where debconf itself would refuse it (a line it cannot read, a
/// duplicate field, a template without `Template:` or `Type:`).
pub fn parse_templates(text: &str) -> Option<Vec<Template>> {
    let mut templates = Vec::new();
    for record in text.split("\n\n") {
        let record = record.trim_matches('\n');
        if record.is_empty() {
            continue;
        }
        let mut fields: BTreeMap<String, String> = BTreeMap::new();
        let mut current: Option<(String, String, String)> = None;
        let save = |fields: &mut BTreeMap<String, String>,
                    (field, value, extended): (String, String, String)|
         -> Option<()> {
            if fields.contains_key(&field) {
                return None;
            }
            let extended = extended.trim_end_matches('\n');
            if !extended.is_empty() {
                fields.insert(format!("extended_{field}"), extended.to_string());
            }
            fields.insert(field, value);
            Some(())
        };
        for line in record.split('\n') {
            if let Some((field, value)) = field_line(line) {
                if let Some(previous) = current.take() {
                    save(&mut fields, previous)?;
                }
                current = Some((field.to_lowercase(), value.to_string(), String::new()));
                continue;
            }
            let (_, _, extended) = current.as_mut()?;
            let rest = line.strip_prefix(is_perl_space)?;
            if rest == "." {
                extended.push_str("\n\n");
            } else if rest.starts_with(is_perl_space) {
                if !extended.is_empty() && !extended.ends_with(['\n', ' ']) {
                    extended.push('\n');
                }
                extended.push_str(rest.trim_end_matches(is_perl_space));
                extended.push('\n');
            } else {
                if !extended.is_empty() && !extended.ends_with(['\n', ' ']) {
                    extended.push(' ');
                }
                extended.push_str(rest.trim_end_matches(is_perl_space));
            }
        }
        if let Some(last) = current.take() {
            save(&mut fields, last)?;
        }
        let name = fields.remove("template")?;
        fields.get("type")?;
        templates.push(Template { name, fields });
    }
    Some(templates)
}

fn is_perl_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\x0b' | '\x0c')
}

/// `Field: value` (debconf's `^([-_@.A-Za-z0-9]*):\s?(.*)`), the value
/// without trailing whitespace.
fn field_line(line: &str) -> Option<(&str, &str)> {
    let (field, value) = line.split_once(':')?;
    if !field
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '@' | '.'))
    {
        return None;
    }
    let value = value.strip_prefix(is_perl_space).unwrap_or(value);
    Some((field, value.trim_end_matches(is_perl_space)))
}

/// Registers `package`'s templates as debconf's frontend does before the
/// package's scripts run: each template's fields replaced by the file's,
/// a question of the same name created (or the package added to its
/// owners). `false`, with nothing changed, where a new question would be a
/// password (kept in `passwords.dat`, which drydock does not write).
pub fn register(
    config: &mut Database,
    templates: &mut Database,
    package: &str,
    loaded: &[Template],
) -> bool {
    let creates_password = loaded.iter().any(|t| {
        t.fields.get("type").map(String::as_str) == Some("password")
            && !config.items.contains_key(&t.name)
    });
    if creates_password {
        return false;
    }
    for template in loaded {
        let question = config.items.entry(template.name.clone()).or_default();
        question.owners.insert(package.to_string());
        if !question.fields.contains_key("template") {
            question
                .fields
                .insert("template".to_string(), template.name.clone());
        }
        let item = templates.items.entry(template.name.clone()).or_default();
        item.owners.insert(template.name.clone());
        item.fields = template.fields.clone();
    }
    true
}

/// `ca-certificates/trust_new_crts`: whether certificates an upgrade adds are trusted.
pub const TRUST_NEW: &str = "ca-certificates/trust_new_crts";
const ENABLE: &str = "ca-certificates/enable_crts";
const NEW: &str = "ca-certificates/new_crts";

/// What `ca-certificates`' `config` script and `postinst` record after an
/// upgrade: `enable_crts` answers the certificates trusted (those
/// `ca-certificates.conf` trusts, plus new ones when `trust_new_crts` is
/// `yes`, minus its `!` lines) and offers every available one (the
/// package's `.crt` files and the script's `CERTS_LIST`, sorted, unique),
/// `new_crts` offers none and is marked unseen. `false`, with nothing
/// changed, when new certificates wait for a question (`ask`) or the
/// script has no `CERTS_LIST`.
pub fn record_ca_certificates(
    config: &mut Database,
    config_script: &str,
    conf: &str,
    shipped: &BTreeSet<String>,
) -> bool {
    let trust_new = config.value(TRUST_NEW).unwrap_or("yes").to_string();
    if trust_new == "ask" {
        return false;
    }
    let Some(listed) = config_script
        .lines()
        .find_map(|l| l.strip_prefix("CERTS_LIST=\""))
        .and_then(|l| l.strip_suffix('"'))
    else {
        return false;
    };
    // The script splits the sorted list on whitespace (`for crt in $crts`).
    let available: Vec<String> = shipped
        .iter()
        .cloned()
        .chain(listed.split(',').map(|c| c.trim_start().to_string()))
        .collect::<BTreeSet<String>>()
        .iter()
        .flat_map(|c| c.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .collect();
    let choices = crate::truststore::Choices::read(conf);
    let enabled: Vec<&str> = available
        .iter()
        .map(String::as_str)
        .filter(|c| choices.enables(c, trust_new == "yes"))
        .collect();
    let enable = config.items.entry(ENABLE.to_string()).or_default();
    enable
        .fields
        .insert("value".to_string(), enabled.join(", "));
    enable
        .variables
        .insert("enable_crts".to_string(), available.join(", "));
    let new = config.items.entry(NEW.to_string()).or_default();
    new.variables.insert("new_crts".to_string(), String::new());
    new.flags.remove("seen");
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG_DAT: &str = "Name: ca-certificates/enable_crts
Template: ca-certificates/enable_crts
Value: mozilla/A.crt, mozilla/Old.crt
Owners: ca-certificates
Variables:
 enable_crts = mozilla/A.crt, mozilla/Old.crt, mozilla/Off.crt

Name: ca-certificates/new_crts
Template: ca-certificates/new_crts
Owners: ca-certificates
Flags: seen
Variables:
 new_crts = 

Name: ca-certificates/trust_new_crts
Template: ca-certificates/trust_new_crts
Value: yes
Owners: ca-certificates

";

    #[test]
    fn a_database_is_written_back_byte_for_byte() {
        assert_eq!(Database::parse(CONFIG_DAT).render(), CONFIG_DAT);
        let templates = "Name: a/b\nChoices: x, y\nDescription: line\nExtended_description: one\\n\\ntwo\nType: select\nOwners: a/b\n\n";
        let parsed = Database::parse(templates);
        assert_eq!(
            parsed.items["a/b"].fields["extended_description"],
            "one\n\ntwo"
        );
        assert_eq!(parsed.render(), templates);
    }

    #[test]
    fn templates_are_read_as_debconf_reads_them() {
        let text = "Template: pkg/q\nType: boolean\nDefault: true\nDescription: Short?  \n First line\n continues here.\n .\n  verbatim  \n  block\nDescription-ro.UTF-8: Scurt?\n\nTemplate: pkg/title\nType: title\nDescription: Title\n";
        let templates = parse_templates(text).unwrap();
        assert_eq!(templates.len(), 2);
        let q = &templates[0];
        assert_eq!(q.name, "pkg/q");
        assert_eq!(q.fields["description"], "Short?");
        assert_eq!(
            q.fields["extended_description"],
            "First line continues here.\n\n verbatim\n block"
        );
        assert_eq!(q.fields["description-ro.utf-8"], "Scurt?");
        assert!(!q.fields.contains_key("template"));
        assert!(parse_templates("Template: a\nType: note\nType: text\n").is_none());
        assert!(parse_templates("Type: note\nDescription: x\n").is_none());
        assert!(parse_templates("Template: a\nType: note\n!bad line\n").is_none());
    }

    #[test]
    fn registering_replaces_fields_and_adds_questions() {
        let mut config = Database::parse(CONFIG_DAT);
        let mut templates = Database::parse(
            "Name: ca-certificates/trust_new_crts\nChoices: yes, no, ask\nDescription: old\nType: select\nOwners: ca-certificates/trust_new_crts\n\n",
        );
        let loaded = parse_templates(
            "Template: ca-certificates/trust_new_crts\nType: select\nChoices: yes, no, ask\nDescription: new\nDescription-ro.utf-8: nou\n\nTemplate: ca-certificates/fresh\nType: note\nDescription: added\n",
        )
        .unwrap();
        assert!(register(
            &mut config,
            &mut templates,
            "ca-certificates",
            &loaded
        ));
        let trust = &templates.items["ca-certificates/trust_new_crts"];
        assert_eq!(trust.fields["description"], "new");
        assert_eq!(trust.fields["description-ro.utf-8"], "nou");
        let fresh = &config.items["ca-certificates/fresh"];
        assert_eq!(fresh.fields["template"], "ca-certificates/fresh");
        assert!(fresh.owners.contains("ca-certificates"));
        assert!(fresh.flags.is_empty());
        assert!(
            templates.items["ca-certificates/fresh"]
                .owners
                .contains("ca-certificates/fresh")
        );
        assert_eq!(config.value(TRUST_NEW), Some("yes"));

        let password =
            parse_templates("Template: p/secret\nType: password\nDescription: x\n").unwrap();
        let before = config.clone();
        assert!(!register(&mut config, &mut templates, "p", &password));
        assert_eq!(config, before);
    }

    #[test]
    fn ca_certificates_answers_follow_the_shipped_certificates() {
        let mut config = Database::parse(CONFIG_DAT);
        let script = "#!/bin/sh\nCERTS_LIST=\"mozilla/A.crt, mozilla/New.crt\"\n";
        let conf = "# comment\nmozilla/A.crt\nmozilla/Old.crt\n!mozilla/Off.crt\n";
        let shipped: BTreeSet<String> = ["mozilla/A.crt", "mozilla/Off.crt", "mozilla/New.crt"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(record_ca_certificates(&mut config, script, conf, &shipped));
        assert_eq!(config.value(ENABLE), Some("mozilla/A.crt, mozilla/New.crt"));
        assert_eq!(
            config.items[ENABLE].variables["enable_crts"],
            "mozilla/A.crt, mozilla/New.crt, mozilla/Off.crt"
        );
        assert!(config.items[NEW].flags.is_empty());

        let mut asking = Database::parse(&CONFIG_DAT.replace("Value: yes", "Value: ask"));
        let before = asking.clone();
        assert!(!record_ca_certificates(&mut asking, script, conf, &shipped));
        assert_eq!(asking, before);

        let mut distrusting = Database::parse(&CONFIG_DAT.replace("Value: yes", "Value: no"));
        assert!(record_ca_certificates(
            &mut distrusting,
            script,
            conf,
            &shipped
        ));
        assert_eq!(distrusting.value(ENABLE), Some("mozilla/A.crt"));
    }
}
