//! Which VEX statements speak about which component instance.
//!
//! Both sides are reduced to *product keys* (plain strings), and a statement
//! applies to a component exactly when their keys intersect. Because matching
//! is an equi-join on keys, the reference matcher and the incremental engine
//! share this one definition and cannot drift apart.
//!
//! - A purl product matches components with the same type/namespace/name and,
//!   if the statement's purl has a version, the same version. Qualifiers and
//!   subpaths are ignored: VEX authors rarely repeat `arch=`/`distro=` the way
//!   an SBOM tool writes them.
//! - An artifact product (digest, image reference, SBOM serial number) matches
//!   every component of that artifact, or with a subcomponent only the
//!   component with that purl (as above) or bom-ref / SPDXID.
//! - Scope is folded in: a tenant's statement only yields keys under its
//!   tenant, a global (feed) statement under `g`.

use crate::formats::purl::Purl;
use crate::model::{Artifact, Component, Scope, VexProduct, VexStatement};

fn scope_prefix(scope: &Scope) -> String {
    match scope {
        Scope::Global => "g".to_string(),
        Scope::Tenant(t) => format!("t:{t}"),
    }
}

/// `purl:type/namespace/name` and, with a version, `…@version`.
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
fn statement_purl_identity(purl: &str) -> String {
    purl_identities(purl)
        .into_iter()
        .next()
        .unwrap_or_else(|| format!("raw:{purl}"))
}

/// The one product key of a statement.
pub fn statement_key(statement: &VexStatement) -> String {
    let prefix = scope_prefix(&statement.scope);
    let product = match &statement.product {
        VexProduct::Purl(p) => statement_purl_identity(p),
        VexProduct::Artifact(a) => format!("art:{a}"),
    };
    match &statement.subcomponent {
        None => format!("{prefix}|{product}"),
        Some(sub) if sub.starts_with("pkg:") => {
            format!("{prefix}|{product}|{}", statement_purl_identity(sub))
        }
        Some(sub) => format!("{prefix}|{product}|ref:{sub}"),
    }
}

/// Every product key a component instance answers to, sorted and unique.
pub fn component_keys(artifact: &Artifact, tenant: &str, component: &Component) -> Vec<String> {
    let own: Vec<String> = component
        .purl
        .as_deref()
        .map(purl_identities)
        .unwrap_or_default();
    let mut subs = own.clone();
    if let Some(r) = &component.reference {
        subs.push(format!("ref:{r}"));
    }
    let mut products: Vec<String> = vec![format!("art:{}", artifact.id)];
    for r in &artifact.references {
        products.push(format!("art:{r}"));
        if r.starts_with("pkg:") {
            products.extend(purl_identities(r));
        }
    }
    if let Some(p) = &artifact.purl {
        products.extend(purl_identities(p));
    }
    if let Some(d) = &artifact.digest {
        products.push(format!("art:{d}"));
    }
    let mut keys = Vec::new();
    for prefix in ["g".to_string(), format!("t:{tenant}")] {
        for id in &own {
            keys.push(format!("{prefix}|{id}"));
        }
        for p in &products {
            keys.push(format!("{prefix}|{p}"));
            for s in &subs {
                keys.push(format!("{prefix}|{p}|{s}"));
            }
        }
    }
    keys.sort();
    keys.dedup();
    keys
}
