//! Which VEX statements speak about which component instance.
//!
//! Both sides are reduced to plain string keys and a statement applies to a
//! component instance exactly when its keys are found among the instance's.
//! Matching is an equi-join, so the reference matcher and the incremental
//! engine share this one definition and cannot drift apart; and the keys are
//! split so that no key set grows with (artifacts × components):
//!
//! - a statement has a *product key* and optionally a *subcomponent key*;
//! - an artifact has product keys: its scope tokens (`g` for feed statements,
//!   `t:<tenant>` for its tenant's), and under each its id, digest, SBOM
//!   serial number / document namespace and image purl;
//! - a component has subcomponent keys: its purl with and without version, and
//!   its bom-ref / SPDXID.
//!
//! The statement applies when its product key is one of the artifact's and its
//! subcomponent key, if any, is one of the component's. A purl product (VEX on
//! a package, wherever it is) is a statement on the scope token with the purl
//! as subcomponent. Purls match on type/namespace/name and, when the
//! statement's purl has one, version; qualifiers and subpaths are ignored, as
//! VEX authors rarely repeat `arch=`/`distro=` the way an SBOM tool writes them.

use crate::formats::purl::Purl;
use crate::model::{Artifact, Component, RuntimeState, Scope, VexProduct, VexStatement};

/// The token a scope's statements are keyed under: `g` (feed) or `t:<tenant>`.
pub fn scope_token(scope: &Scope) -> String {
    match scope {
        Scope::Global => "g".to_string(),
        Scope::Tenant(t) => format!("t:{t}"),
    }
}

/// `purl:type/namespace/name@version` (when versioned) and `purl:type/namespace/name`.
fn purl_identities(purl: &str) -> Vec<String> {
    match Purl::parse(purl) {
        Ok(p) => {
            let mut base = format!("purl:{}/", p.ty);
            if let Some(ns) = &p.namespace {
                base.push_str(ns);
                base.push('/');
            }
            base.push_str(&p.name);
            match &p.version {
                Some(v) => vec![format!("{base}@{v}"), base],
                None => vec![base],
            }
        }
        Err(_) => vec![format!("raw:{purl}")],
    }
}

/// The most specific identity a statement's purl names.
fn purl_identity(purl: &str) -> String {
    purl_identities(purl)
        .into_iter()
        .next()
        .unwrap_or_else(|| format!("raw:{purl}"))
}

fn sub_key(sub: &str) -> String {
    if sub.starts_with("pkg:") {
        purl_identity(sub)
    } else {
        format!("ref:{sub}")
    }
}

/// A statement's `(product key, subcomponent key)`.
pub fn statement_keys(statement: &VexStatement) -> (String, Option<String>) {
    let scope = scope_token(&statement.scope);
    match (&statement.product, &statement.subcomponent) {
        (VexProduct::Purl(p), None) => (scope, Some(purl_identity(p))),
        (VexProduct::Purl(p), Some(s)) => {
            (format!("{scope}|{}", purl_identity(p)), Some(sub_key(s)))
        }
        (VexProduct::Artifact(a), s) => (format!("{scope}|art:{a}"), s.as_deref().map(sub_key)),
    }
}

/// The product keys of an artifact owned by `tenant`, sorted and unique.
pub fn artifact_keys(artifact: &Artifact, tenant: &str) -> Vec<String> {
    let mut identities = vec![format!("art:{}", artifact.id)];
    if let Some(d) = &artifact.digest {
        identities.push(format!("art:{d}"));
    }
    for r in &artifact.references {
        identities.push(format!("art:{r}"));
        if r.starts_with("pkg:") {
            identities.extend(purl_identities(r));
        }
    }
    if let Some(p) = &artifact.purl {
        identities.extend(purl_identities(p));
    }
    let mut keys = Vec::with_capacity(2 * identities.len() + 2);
    for scope in ["g".to_string(), format!("t:{tenant}")] {
        for id in &identities {
            keys.push(format!("{scope}|{id}"));
        }
        keys.push(scope);
    }
    keys.sort();
    keys.dedup();
    keys
}

/// The key an artifact of `tenant` carrying label `key=value` answers to;
/// label keys are case-insensitive, values are not.
pub fn label_key(tenant: &str, key: &str, value: &str) -> String {
    format!("t:{tenant}|label:{}={value}", key.to_lowercase())
}

/// The key an artifact of `tenant` in runtime state `state` answers to.
pub fn runtime_key(tenant: &str, state: RuntimeState) -> String {
    format!("t:{tenant}|runtime:{}", state.as_str())
}

/// The subcomponent keys of a component, sorted and unique.
pub fn component_keys(component: &Component) -> Vec<String> {
    let mut keys: Vec<String> = component
        .purl
        .as_deref()
        .map(purl_identities)
        .unwrap_or_default();
    if let Some(r) = &component.reference {
        keys.push(format!("ref:{r}"));
    }
    keys.sort();
    keys.dedup();
    keys
}
