//! Package URLs (purl spec): parse, normalize per type, and map purl type ⇄
//! OSV ecosystem so SBOM components and advisory entries join on one key.
//!
//! Two normal forms live here on purpose. [`Purl::canonical`] follows the purl
//! specification (and its test suite), so a purl we print is the purl every
//! other tool prints. [`Purl::package_name`] and [`Purl::ecosystem`] follow
//! OSV instead, and go through the same [`normalize_package_name`] that is
//! applied to advisories, so that the join key is equal by construction even
//! where the purl spec keeps case that OSV matching must ignore (NuGet).
//!
//! Choices the specification leaves open:
//! - golang names keep their case: Go module paths are case-sensitive and OSV
//!   stores them as published (`github.com/BurntSushi/toml`).
//! - For rpm, the `epoch` qualifier is folded into [`Purl::match_version`] as
//!   `epoch:version`, the form RPM comparisons and OSV advisories use; the
//!   canonical purl keeps it as a qualifier, as the spec says.
//! - nuget names keep their case in the canonical purl (the spec test suite
//!   does) and are lower-cased only in the OSV package name.

use std::collections::BTreeMap;

use super::FormatError;

/// A parsed, normalized package URL.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Purl {
    pub ty: String,
    pub namespace: Option<String>,
    pub name: String,
    pub version: Option<String>,
    pub qualifiers: BTreeMap<String, String>,
    pub subpath: Option<String>,
}

impl Purl {
    /// Parse and normalize (spec "How to parse", then type-specific rules).
    /// Callers attach the document and JSON path with [`PurlError::at`].
    pub fn parse(s: &str) -> Result<Purl, PurlError> {
        let err = |reason: &str| PurlError {
            input: s.to_string(),
            reason: reason.to_string(),
        };

        let (rest, subpath) = match s.rsplit_once('#') {
            Some((rest, sub)) => (rest, clean_subpath(sub).map_err(|r| err(&r))?),
            None => (s, None),
        };
        let (rest, qualifiers) = match rest.rsplit_once('?') {
            Some((rest, q)) => (rest, parse_qualifiers(q).map_err(|r| err(&r))?),
            None => (rest, BTreeMap::new()),
        };
        let Some((scheme, rest)) = rest.split_once(':') else {
            return Err(err("missing scheme `pkg:`"));
        };
        if !scheme.eq_ignore_ascii_case("pkg") {
            return Err(err("scheme must be `pkg`"));
        }
        let rest = rest.trim_matches('/');
        let Some((ty, rest)) = rest.split_once('/') else {
            return Err(if rest.is_empty() {
                err("missing type")
            } else {
                err("missing name")
            });
        };
        let ty = parse_type(ty).map_err(|r| err(&r))?;

        // An unencoded `/` after the last `@` means that `@` was an npm scope
        // written without `%40` (`pkg:npm/@angular/core`), not the version.
        let (rest, version) = match rest.rsplit_once('@') {
            Some((left, v)) if !v.contains('/') => {
                let v = percent_decode(v).map_err(|r| err(&r))?;
                (left, (!v.is_empty()).then_some(v))
            }
            _ => (rest, None),
        };
        let rest = rest.trim_matches('/');
        let (namespace_raw, name_raw) = match rest.rsplit_once('/') {
            Some((ns, name)) => (Some(ns), name),
            None => (None, rest),
        };
        let name = percent_decode(name_raw).map_err(|r| err(&r))?;
        if name.is_empty() {
            return Err(err("missing name"));
        }
        let namespace = match namespace_raw {
            Some(ns) => {
                let mut segments = Vec::new();
                for seg in ns.split('/') {
                    let decoded = percent_decode(seg).map_err(|r| err(&r))?;
                    // A decoded `/` (`%2F`) cannot stay inside one segment.
                    segments.extend(
                        decoded
                            .split('/')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string),
                    );
                }
                (!segments.is_empty()).then(|| segments.join("/"))
            }
            None => None,
        };

        let mut purl = Purl {
            ty,
            namespace,
            name,
            version,
            qualifiers,
            subpath,
        };
        purl.normalize_for_type();
        Ok(purl)
    }

    fn normalize_for_type(&mut self) {
        let lower_ns = |p: &mut Purl| {
            if let Some(ns) = &mut p.namespace {
                *ns = ns.to_lowercase();
            }
        };
        match self.ty.as_str() {
            "bitbucket" | "github" | "githubactions" | "composer" | "deb" | "apk" | "hex"
            | "npm" => {
                lower_ns(self);
                self.name = self.name.to_lowercase();
            }
            "pypi" => self.name = self.name.to_lowercase().replace('_', "-"),
            "rpm" => lower_ns(self),
            _ => {}
        }
    }

    /// The canonical string form (normalized, qualifiers sorted, percent-encoded).
    pub fn canonical(&self) -> String {
        let mut out = format!("pkg:{}/", self.ty);
        if let Some(ns) = &self.namespace {
            let segs: Vec<String> = ns.split('/').map(|s| encode(s, "")).collect();
            out.push_str(&segs.join("/"));
            out.push('/');
        }
        out.push_str(&encode(&self.name, ""));
        if let Some(v) = &self.version {
            out.push('@');
            out.push_str(&encode(v, ""));
        }
        if !self.qualifiers.is_empty() {
            let pairs: Vec<String> = self
                .qualifiers
                .iter()
                .map(|(k, v)| format!("{k}={}", encode(v, "/")))
                .collect();
            out.push('?');
            out.push_str(&pairs.join("&"));
        }
        if let Some(sub) = &self.subpath {
            let segs: Vec<String> = sub.split('/').map(|s| encode(s, "")).collect();
            out.push('#');
            out.push_str(&segs.join("/"));
        }
        out
    }

    /// The same package at another version (VEX `affects[].versions`).
    pub fn with_version(&self, version: &str) -> Purl {
        Purl {
            version: Some(version.to_string()),
            ..self.clone()
        }
    }

    /// The version to compare against advisory ranges: the purl version, with
    /// an rpm `epoch` qualifier prefixed as `epoch:version`.
    pub fn match_version(&self) -> Option<String> {
        let version = self.version.as_ref()?;
        match self.qualifiers.get("epoch") {
            Some(epoch) if self.ty == "rpm" && !version.contains(':') => {
                Some(format!("{epoch}:{version}"))
            }
            _ => Some(version.clone()),
        }
    }

    /// OSV ecosystem of this purl, e.g. `PyPI`, `npm`, `Maven`, `Go`,
    /// `crates.io`, `Debian:12` (from `distro=debian-12` / `bookworm`), `Alpine:v3.18`.
    pub fn ecosystem(&self) -> Option<String> {
        let fixed = match self.ty.as_str() {
            "pypi" => "PyPI",
            "npm" => "npm",
            "maven" => "Maven",
            "golang" => "Go",
            "cargo" => "crates.io",
            "gem" => "RubyGems",
            "nuget" => "NuGet",
            "composer" => "Packagist",
            "hex" => "Hex",
            "pub" => "Pub",
            "swift" => "SwiftURL",
            "conan" => "ConanCenter",
            "cran" => "CRAN",
            "hackage" => "Hackage",
            "githubactions" => "GitHub Actions",
            "bitnami" => "Bitnami",
            "deb" => return self.deb_ecosystem(),
            "apk" => return self.apk_ecosystem(),
            "rpm" => return self.rpm_ecosystem(),
            _ => return None,
        };
        Some(fixed.to_string())
    }

    fn distro(&self) -> Option<&str> {
        self.qualifiers.get("distro").map(String::as_str)
    }

    fn deb_ecosystem(&self) -> Option<String> {
        match self.namespace.as_deref()? {
            "debian" => Some(match self.distro().and_then(debian_release) {
                Some(release) => format!("Debian:{release}"),
                None => "Debian".to_string(),
            }),
            "ubuntu" => Some(match self.distro().and_then(ubuntu_release) {
                Some(release) => format!("Ubuntu:{release}"),
                None => "Ubuntu".to_string(),
            }),
            _ => None,
        }
    }

    fn apk_ecosystem(&self) -> Option<String> {
        match self.namespace.as_deref()? {
            "alpine" => Some(match self.distro().and_then(alpine_branch) {
                Some(branch) => format!("Alpine:{branch}"),
                None => "Alpine".to_string(),
            }),
            "wolfi" => Some("Wolfi".to_string()),
            "chainguard" => Some("Chainguard".to_string()),
            _ => None,
        }
    }

    fn rpm_ecosystem(&self) -> Option<String> {
        let distro = self.distro();
        let with_major = |base: &str, prefixes: &[&str]| match distro.and_then(|d| {
            let d = prefixes.iter().find_map(|p| d.strip_prefix(p)).unwrap_or(d);
            let major = d.split('.').next().unwrap_or(d);
            (!major.is_empty() && major.bytes().all(|b| b.is_ascii_digit()))
                .then(|| major.to_string())
        }) {
            Some(major) => format!("{base}:{major}"),
            None => base.to_string(),
        };
        match self.namespace.as_deref()? {
            // OSV scopes Red Hat by a CPE product stream that a purl does not carry.
            "redhat" => Some("Red Hat".to_string()),
            "almalinux" => Some(with_major("AlmaLinux", &["almalinux-", "alma-", "el"])),
            "rocky" | "rockylinux" => {
                Some(with_major("Rocky Linux", &["rocky-", "rockylinux-", "el"]))
            }
            "suse" => Some(match distro.and_then(suse_release) {
                Some(release) => format!("SUSE:{release}"),
                None => "SUSE".to_string(),
            }),
            "opensuse" => Some(match distro.and_then(opensuse_release) {
                Some(release) => format!("openSUSE:{release}"),
                None => "openSUSE".to_string(),
            }),
            _ => None,
        }
    }

    /// OSV package name: `group:artifact` for Maven, `@scope/name` for npm,
    /// the full module path for Go, `vendor/name` for Packagist, PEP 503 for PyPI.
    pub fn package_name(&self) -> String {
        let raw = match (self.ty.as_str(), &self.namespace) {
            ("maven", Some(group)) => format!("{group}:{}", self.name),
            ("npm" | "golang" | "composer" | "swift" | "githubactions", Some(ns)) => {
                format!("{ns}/{}", self.name)
            }
            _ => self.name.clone(),
        };
        match self.ecosystem() {
            Some(eco) => normalize_package_name(&eco, &raw),
            None => raw,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid purl {input:?}: {reason}")]
pub struct PurlError {
    pub input: String,
    pub reason: String,
}

impl PurlError {
    pub fn at(self, document: &str, path: &str) -> FormatError {
        FormatError::new(document, path, super::ErrorKind::Invalid, self.to_string())
    }
}

/// purl type for an OSV ecosystem (base name before `:`), e.g. `PyPI` → `pypi`.
pub fn purl_type_for_ecosystem(ecosystem: &str) -> Option<&'static str> {
    let base = ecosystem.split(':').next().unwrap_or(ecosystem);
    Some(match base {
        "PyPI" => "pypi",
        "npm" => "npm",
        "Maven" => "maven",
        "Go" => "golang",
        "crates.io" => "cargo",
        "RubyGems" => "gem",
        "NuGet" => "nuget",
        "Packagist" => "composer",
        "Hex" => "hex",
        "Pub" => "pub",
        "SwiftURL" => "swift",
        "ConanCenter" => "conan",
        "CRAN" => "cran",
        "Hackage" => "hackage",
        "GitHub Actions" => "githubactions",
        "Bitnami" => "bitnami",
        "Debian" | "Ubuntu" => "deb",
        "Alpine" | "Wolfi" | "Chainguard" => "apk",
        "Red Hat" | "AlmaLinux" | "Rocky Linux" | "SUSE" | "openSUSE" => "rpm",
        _ => return None,
    })
}

/// Normalize an OSV package name the way [`Purl::package_name`] does, so
/// `(ecosystem, name)` of an advisory equals that of a matching component.
pub fn normalize_package_name(ecosystem: &str, name: &str) -> String {
    let base = ecosystem.split(':').next().unwrap_or(ecosystem);
    match base {
        // PEP 503: lower-case, runs of `-`, `_`, `.` become one `-`.
        "PyPI" => {
            let mut out = String::with_capacity(name.len());
            let mut sep = false;
            for c in name.chars() {
                if matches!(c, '-' | '_' | '.') {
                    sep = true;
                } else {
                    if sep && !out.is_empty() {
                        out.push('-');
                    }
                    sep = false;
                    out.extend(c.to_lowercase());
                }
            }
            out
        }
        // npm, Packagist and NuGet names are case-insensitive in practice;
        // npm and Packagist registries store them lower-cased, NuGet ids
        // compare case-insensitively while advisories keep display case.
        "npm" | "Packagist" | "NuGet" => name.to_lowercase(),
        _ => name.to_string(),
    }
}

fn parse_type(ty: &str) -> Result<String, String> {
    let mut chars = ty.chars();
    match chars.next() {
        None => return Err("missing type".to_string()),
        Some(c) if !c.is_ascii_alphabetic() => {
            return Err(format!("type {ty:?} must start with an ASCII letter"))
        }
        Some(_) => {}
    }
    // `+` was allowed by purl spec 1.0 and is still found in the wild.
    if let Some(bad) = ty
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+')))
    {
        return Err(format!("type {ty:?} contains invalid character {bad:?}"));
    }
    Ok(ty.to_ascii_lowercase())
}

fn parse_qualifiers(q: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = key.to_ascii_lowercase();
        let valid_key = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !valid_key {
            return Err(format!("invalid qualifier key {key:?}"));
        }
        let value = percent_decode(value)?;
        if value.is_empty() {
            continue;
        }
        if out.insert(key.clone(), value).is_some() {
            return Err(format!("duplicate qualifier key {key:?}"));
        }
    }
    Ok(out)
}

fn clean_subpath(sub: &str) -> Result<Option<String>, String> {
    let mut segments = Vec::new();
    for seg in sub.split('/') {
        let decoded = percent_decode(seg)?;
        segments.extend(
            decoded
                .split('/')
                .filter(|s| !s.is_empty() && *s != "." && *s != "..")
                .map(str::to_string),
        );
    }
    Ok((!segments.is_empty()).then(|| segments.join("/")))
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hi = bytes.get(i + 1).and_then(|&h| (h as char).to_digit(16));
            let lo = bytes.get(i + 2).and_then(|&l| (l as char).to_digit(16));
            match (hi, lo) {
                (Some(hi), Some(lo)) => {
                    // Two hex digits fit a byte; the cast cannot truncate.
                    out.push((hi * 16 + lo) as u8);
                    i += 3;
                }
                _ => return Err(format!("bad percent-encoding in {s:?}")),
            }
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("percent-encoding of {s:?} is not UTF-8"))
}

/// Percent-encode everything outside the spec's permitted set; `:` is never
/// encoded, and `extra` lists separators that may stay literal in this
/// component (`/` in qualifier values, as the spec test suite prints them).
fn encode(s: &str, extra: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        let c = b as char;
        if c.is_ascii_alphanumeric()
            || matches!(c, '.' | '-' | '_' | '~' | ':')
            || extra.contains(c)
        {
            out.push(c);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `debian-11`, `debian-11.6`, `11`, `bullseye` → `11`.
fn debian_release(distro: &str) -> Option<String> {
    let d = distro.to_ascii_lowercase();
    let d = d.strip_prefix("debian-").unwrap_or(&d);
    let codename = match d {
        "buzz" => "1.1",
        "rex" => "1.2",
        "bo" => "1.3",
        "hamm" => "2.0",
        "slink" => "2.1",
        "potato" => "2.2",
        "woody" => "3.0",
        "sarge" => "3.1",
        "etch" => "4",
        "lenny" => "5",
        "squeeze" => "6",
        "wheezy" => "7",
        "jessie" => "8",
        "stretch" => "9",
        "buster" => "10",
        "bullseye" => "11",
        "bookworm" => "12",
        "trixie" => "13",
        "forky" => "14",
        "sid" | "unstable" => "sid",
        _ => "",
    };
    if !codename.is_empty() {
        return Some(codename.to_string());
    }
    let major = d.split('.').next().unwrap_or(d);
    (!major.is_empty() && major.bytes().all(|b| b.is_ascii_digit())).then(|| major.to_string())
}

/// `ubuntu-22.04`, `22.04`, `jammy` → `22.04:LTS` (OSV appends `:LTS` to
/// LTS releases: the even-year `.04` ones). Ubuntu Pro (ESM) streams,
/// `Ubuntu:Pro:…`, cannot be told apart from a purl and are not produced.
fn ubuntu_release(distro: &str) -> Option<String> {
    let d = distro.to_ascii_lowercase();
    let d = d.strip_prefix("ubuntu-").unwrap_or(&d);
    let version = match d {
        "trusty" => "14.04",
        "xenial" => "16.04",
        "bionic" => "18.04",
        "focal" => "20.04",
        "groovy" => "20.10",
        "hirsute" => "21.04",
        "impish" => "21.10",
        "jammy" => "22.04",
        "kinetic" => "22.10",
        "lunar" => "23.04",
        "mantic" => "23.10",
        "noble" => "24.04",
        "oracular" => "24.10",
        "plucky" => "25.04",
        "questing" => "25.10",
        other => other,
    };
    let mut parts = version.split('.');
    let (year, month) = (parts.next()?, parts.next()?);
    let numeric = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !numeric(year) || !numeric(month) {
        return None;
    }
    let even_year = year
        .bytes()
        .last()
        .is_some_and(|b| (b - b'0').is_multiple_of(2));
    Some(if even_year && month == "04" {
        format!("{year}.{month}:LTS")
    } else {
        format!("{year}.{month}")
    })
}

/// `alpine-3.18.4`, `3.18`, `v3.18` → `v3.18`; `edge` stays `edge`.
fn alpine_branch(distro: &str) -> Option<String> {
    let d = distro.to_ascii_lowercase();
    let d = d.strip_prefix("alpine-").unwrap_or(&d);
    if d == "edge" {
        return Some("edge".to_string());
    }
    let d = d.strip_prefix('v').unwrap_or(d);
    let mut parts = d.split('.');
    let (major, minor) = (parts.next()?, parts.next()?);
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (numeric(major) && numeric(minor)).then(|| format!("v{major}.{minor}"))
}

/// `sles-15.5` / `sles-15` → OSV's `PRETTY_NAME` form
/// `Linux Enterprise Server 15 SP5` / `Linux Enterprise Server 15`.
fn suse_release(distro: &str) -> Option<String> {
    let d = distro.to_ascii_lowercase();
    let v = d.strip_prefix("sles-")?;
    let mut parts = v.split('.');
    let major = parts.next().filter(|m| !m.is_empty())?;
    Some(match parts.next() {
        Some(sp) if sp != "0" => format!("Linux Enterprise Server {major} SP{sp}"),
        _ => format!("Linux Enterprise Server {major}"),
    })
}

/// `opensuse-leap-15.5` → `Leap 15.5`, `opensuse-tumbleweed` → `Tumbleweed`.
fn opensuse_release(distro: &str) -> Option<String> {
    let d = distro.to_ascii_lowercase();
    let d = d.strip_prefix("opensuse-").unwrap_or(&d);
    if d == "tumbleweed" {
        return Some("Tumbleweed".to_string());
    }
    let v = d.strip_prefix("leap-")?;
    (!v.is_empty()).then(|| format!("Leap {v}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Purl {
        match Purl::parse(s) {
            Ok(p) => p,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    fn reject(s: &str) -> String {
        match Purl::parse(s) {
            Ok(p) => panic!("{s} accepted as {p:?}"),
            Err(e) => e.reason,
        }
    }

    /// (input, canonical) pairs in the style of the purl-spec test suite.
    #[test]
    fn canonical_forms() {
        let cases = [
            (
                "pkg:maven/org.apache.commons/io@1.3.4",
                "pkg:maven/org.apache.commons/io@1.3.4",
            ),
            (
                "pkg:Maven/org.apache.xmlgraphics/batik-anim@1.9.1?classifier=sources&repositorY_url=repo.spring.io/release",
                "pkg:maven/org.apache.xmlgraphics/batik-anim@1.9.1?classifier=sources&repository_url=repo.spring.io/release",
            ),
            (
                "pkg:maven/org.apache.xmlgraphics/batik-anim@1.9.1?type=pom&classifier=",
                "pkg:maven/org.apache.xmlgraphics/batik-anim@1.9.1?type=pom",
            ),
            (
                "pkg:GOLANG/google.golang.org/genproto@abcdedf#/googleapis/api/annotations/",
                "pkg:golang/google.golang.org/genproto@abcdedf#googleapis/api/annotations",
            ),
            (
                "pkg:golang/google.golang.org/genproto#googleapis/./api/../annotations",
                "pkg:golang/google.golang.org/genproto#googleapis/api/annotations",
            ),
            ("pkg:npm/%40angular/animation@12.3.1", "pkg:npm/%40angular/animation@12.3.1"),
            ("pkg:npm/@Angular/Animation@12.3.1", "pkg:npm/%40angular/animation@12.3.1"),
            ("pkg:npm/@angular/animation", "pkg:npm/%40angular/animation"),
            ("pkg:PYPI/Django_package@1.11.1.dev1", "pkg:pypi/django-package@1.11.1.dev1"),
            (
                "pkg:nuget/EnterpriseLibrary.Common@6.0.1304",
                "pkg:nuget/EnterpriseLibrary.Common@6.0.1304",
            ),
            (
                "pkg:docker/customer/dockerimage@sha256%3A244fd47e07d10?repository_url=gcr.io",
                "pkg:docker/customer/dockerimage@sha256:244fd47e07d10?repository_url=gcr.io",
            ),
            (
                "pkg:deb/Debian/Curl@7.50.3-1?arch=i386&distro=jessie",
                "pkg:deb/debian/curl@7.50.3-1?arch=i386&distro=jessie",
            ),
            (
                "pkg:rpm/fedora/curl@7.50.3-1.fc25?arch=i386&distro=fedora-25",
                "pkg:rpm/fedora/curl@7.50.3-1.fc25?arch=i386&distro=fedora-25",
            ),
            (
                "pkg:composer/Laravel/Framework@7.12.0",
                "pkg:composer/laravel/framework@7.12.0",
            ),
            ("pkg://cargo/rand@0.7.2", "pkg:cargo/rand@0.7.2"),
            (
                "pkg:gem/jruby-launcher@1.1.2?Platform=java",
                "pkg:gem/jruby-launcher@1.1.2?platform=java",
            ),
            (
                "pkg:generic/bitwarderl?vcs_url=git%2Bhttps://git.fsfe.org/dxtr/bitwarderl%40cc55108da32",
                "pkg:generic/bitwarderl?vcs_url=git%2Bhttps://git.fsfe.org/dxtr/bitwarderl%40cc55108da32",
            ),
            ("pkg:generic/a%20b@1.0%2Bx", "pkg:generic/a%20b@1.0%2Bx"),
            (
                "pkg:github/Package-URL/Purl-Spec@244fd47e07d10",
                "pkg:github/package-url/purl-spec@244fd47e07d10",
            ),
        ];
        for (input, canonical) in cases {
            let parsed = p(input);
            assert_eq!(parsed.canonical(), canonical, "canonical of {input}");
            assert_eq!(p(canonical), parsed, "round trip of {input}");
            assert_eq!(p(&parsed.canonical()).canonical(), canonical);
        }
    }

    #[test]
    fn components_are_decoded() {
        let purl = p("pkg:npm/%40babel/core@7.0.0-beta.44?foo=a%26b#lib/x%2Fy");
        assert_eq!(purl.ty, "npm");
        assert_eq!(purl.namespace.as_deref(), Some("@babel"));
        assert_eq!(purl.name, "core");
        assert_eq!(purl.version.as_deref(), Some("7.0.0-beta.44"));
        assert_eq!(purl.qualifiers.get("foo").map(String::as_str), Some("a&b"));
        assert_eq!(purl.subpath.as_deref(), Some("lib/x/y"));
        let go = p("pkg:golang/github.com/Masterminds/semver/v3@v3.1.1?type=module");
        assert_eq!(
            go.namespace.as_deref(),
            Some("github.com/Masterminds/semver")
        );
        assert_eq!(go.name, "v3");
    }

    #[test]
    fn invalid_purls_are_rejected_with_a_reason() {
        assert!(reject("npm/foo@1.0").contains("scheme"));
        assert!(reject("http://example.com/foo").contains("scheme"));
        assert!(reject("pkg:npm").contains("name"));
        assert!(reject("pkg:npm/").contains("name"));
        assert!(reject("pkg:npm/@1.0").contains("name"));
        assert!(reject("pkg:npm/foo%2@1.0").contains("percent"));
        assert!(reject("pkg:npm/foo@1.0%zz").contains("percent"));
        assert!(reject("pkg:npm/foo%ff").contains("UTF-8"));
        assert!(reject("pkg:n&m/foo").contains("invalid character"));
        assert!(reject("pkg:n%70m/foo").contains("invalid character"));
        assert!(reject("pkg:3npm/foo").contains("letter"));
        assert!(reject("pkg:/foo").contains("name"));
        assert!(reject("pkg:").contains("type"));
        assert!(reject("pkg:npm/foo?1bad=x").contains("qualifier key"));
        assert!(reject("pkg:npm/foo?a=1&A=2").contains("duplicate"));
    }

    #[test]
    fn parse_never_panics_on_odd_input() {
        for s in [
            "",
            ":",
            "pkg:",
            "pkg:/",
            "pkg:a/",
            "pkg:a/@",
            "pkg:a/b@",
            "pkg:a/b?",
            "pkg:a/b#",
            "pkg:a/b?=",
            "pkg:a/%",
            "pkg:a/%4",
            "pkg:a/é",
            "pkg:a/b#%",
            "pkg:a//b//",
            "pkg:a/b@%40",
            "#?@",
            "pkg:a/b?x=%",
        ] {
            let _ = Purl::parse(s);
        }
        assert_eq!(p("pkg:a/b@").version, None);
        assert_eq!(p("pkg:a//b//").name, "b");
    }

    #[test]
    fn ecosystems_and_package_names() {
        let cases = [
            ("pkg:pypi/Flask_Cors.Ext@1.0", "PyPI", "flask-cors-ext"),
            ("pkg:npm/%40angular/core@12.0.0", "npm", "@angular/core"),
            ("pkg:npm/lodash@4.17.21", "npm", "lodash"),
            (
                "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
                "Maven",
                "org.apache.logging.log4j:log4j-core",
            ),
            (
                "pkg:golang/github.com/BurntSushi/toml@v1.0.0",
                "Go",
                "github.com/BurntSushi/toml",
            ),
            ("pkg:golang/stdlib@1.20", "Go", "stdlib"),
            ("pkg:cargo/rand@0.7.2", "crates.io", "rand"),
            ("pkg:gem/rails@7.0.0", "RubyGems", "rails"),
            (
                "pkg:nuget/Newtonsoft.Json@13.0.1",
                "NuGet",
                "newtonsoft.json",
            ),
            (
                "pkg:composer/laravel/framework@7.12.0",
                "Packagist",
                "laravel/framework",
            ),
            ("pkg:hex/Phoenix@1.6.0", "Hex", "phoenix"),
            ("pkg:pub/http@0.13.0", "Pub", "http"),
            (
                "pkg:swift/github.com/apple/swift-nio@2.0.0",
                "SwiftURL",
                "github.com/apple/swift-nio",
            ),
            (
                "pkg:deb/debian/curl@7.74.0-1.3?distro=debian-11",
                "Debian:11",
                "curl",
            ),
            (
                "pkg:deb/debian/curl@7.74.0-1.3?distro=bullseye",
                "Debian:11",
                "curl",
            ),
            (
                "pkg:deb/debian/curl@7.88.1?distro=debian-12.4",
                "Debian:12",
                "curl",
            ),
            (
                "pkg:deb/debian/curl@7.88.1?distro=sid",
                "Debian:sid",
                "curl",
            ),
            (
                "pkg:deb/debian/libselinux1-dev@3.1-3?arch=s390x",
                "Debian",
                "libselinux1-dev",
            ),
            (
                "pkg:deb/ubuntu/openssl@3.0.2?distro=ubuntu-22.04",
                "Ubuntu:22.04:LTS",
                "openssl",
            ),
            (
                "pkg:deb/ubuntu/openssl@3.0.2?distro=jammy",
                "Ubuntu:22.04:LTS",
                "openssl",
            ),
            (
                "pkg:deb/ubuntu/openssl@3.0.10?distro=ubuntu-23.10",
                "Ubuntu:23.10",
                "openssl",
            ),
            (
                "pkg:deb/ubuntu/openssl@1.0?distro=ubuntu-21.04",
                "Ubuntu:21.04",
                "openssl",
            ),
            (
                "pkg:apk/alpine/busybox@1.36.1-r2?distro=alpine-3.18.4",
                "Alpine:v3.18",
                "busybox",
            ),
            (
                "pkg:apk/alpine/busybox@1.36.1-r2?distro=3.19",
                "Alpine:v3.19",
                "busybox",
            ),
            ("pkg:apk/alpine/busybox@1.36.1-r2", "Alpine", "busybox"),
            ("pkg:apk/wolfi/git@2.39.0-r1?arch=x86_64", "Wolfi", "git"),
            ("pkg:apk/chainguard/git@2.39.0-r1", "Chainguard", "git"),
            (
                "pkg:rpm/redhat/openssl@1.1.1k-7.el8_6",
                "Red Hat",
                "openssl",
            ),
            (
                "pkg:rpm/almalinux/openssl@3.0.7?distro=almalinux-9.2",
                "AlmaLinux:9",
                "openssl",
            ),
            (
                "pkg:rpm/rocky/openssl@3.0.7?distro=rocky-8.8",
                "Rocky Linux:8",
                "openssl",
            ),
            (
                "pkg:rpm/suse/openssl@1.1.1?distro=sles-15.5",
                "SUSE:Linux Enterprise Server 15 SP5",
                "openssl",
            ),
            (
                "pkg:rpm/opensuse/openssl@1.1.1?distro=opensuse-leap-15.5",
                "openSUSE:Leap 15.5",
                "openssl",
            ),
            (
                "pkg:rpm/opensuse/openssl@3.1?distro=opensuse-tumbleweed",
                "openSUSE:Tumbleweed",
                "openssl",
            ),
        ];
        for (input, eco, name) in cases {
            let purl = p(input);
            assert_eq!(
                purl.ecosystem().as_deref(),
                Some(eco),
                "ecosystem of {input}"
            );
            assert_eq!(purl.package_name(), name, "package of {input}");
            assert_eq!(normalize_package_name(eco, &purl.package_name()), name);
            assert_eq!(
                purl_type_for_ecosystem(eco),
                Some(purl.ty.as_str()),
                "{eco}"
            );
        }
        for unmapped in [
            "pkg:docker/library/nginx@1.0",
            "pkg:oci/debian@sha256:abc",
            "pkg:generic/openssl@1.1",
            "pkg:deb/mint/foo@1",
            "pkg:rpm/fedora/curl@7.50.3-1.fc25",
        ] {
            assert_eq!(p(unmapped).ecosystem(), None, "{unmapped}");
        }
        assert_eq!(purl_type_for_ecosystem("Debian:12"), Some("deb"));
        assert_eq!(purl_type_for_ecosystem("Unknown"), None);
    }

    #[test]
    fn advisory_names_normalize_like_purls() {
        let pairs = [
            (
                "PyPI",
                "Django_REST.framework",
                "pkg:pypi/django-rest-framework",
            ),
            ("npm", "@Babel/Core", "pkg:npm/%40babel/core"),
            ("NuGet", "Newtonsoft.Json", "pkg:nuget/newtonsoft.json"),
            (
                "Packagist",
                "Laravel/Framework",
                "pkg:composer/laravel/framework",
            ),
        ];
        for (eco, osv_name, purl) in pairs {
            assert_eq!(
                normalize_package_name(eco, osv_name),
                p(purl).package_name()
            );
        }
    }

    proptest::proptest! {
        /// Whatever parses, its canonical form parses back to the same purl.
        #[test]
        fn canonical_round_trips(
            ty in "[a-zA-Z][a-zA-Z0-9.+-]{0,6}",
            body in r"[a-zA-Z0-9 /@?#=&%:._~+é-]{0,40}",
        ) {
            let input = format!("pkg:{ty}/{body}");
            if let Ok(purl) = Purl::parse(&input) {
                let canonical = purl.canonical();
                let again = Purl::parse(&canonical);
                proptest::prop_assert_eq!(again.as_ref(), Ok(&purl), "{} -> {}", input, canonical);
                proptest::prop_assert!(canonical.is_ascii());
            }
        }

        #[test]
        fn parse_never_panics(s in r"\PC{0,60}") {
            let _ = Purl::parse(&s);
        }
    }

    #[test]
    fn rpm_epoch_goes_into_the_match_version() {
        let purl = p("pkg:rpm/redhat/openssl@1.1.1k-7.el8_6?epoch=1&arch=x86_64");
        assert_eq!(purl.match_version().as_deref(), Some("1:1.1.1k-7.el8_6"));
        assert_eq!(
            purl.canonical(),
            "pkg:rpm/redhat/openssl@1.1.1k-7.el8_6?arch=x86_64&epoch=1"
        );
        assert_eq!(
            p("pkg:rpm/redhat/a@1:2.0?epoch=1")
                .match_version()
                .as_deref(),
            Some("1:2.0")
        );
        assert_eq!(
            p("pkg:deb/debian/a@2.0?epoch=1").match_version().as_deref(),
            Some("2.0")
        );
        assert_eq!(p("pkg:rpm/redhat/a").match_version(), None);
    }
}
