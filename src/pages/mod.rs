//! The pages people use (login, dispatcher console, field view, tracking, back office), embedded in the
//! binary and served with content types, cache validators and a strict Content-Security-Policy. One route
//! list: add a page by adding its HTML to `assets/` and a line to [`PAGES`]; shared code lives in
//! `assets/app.js`, the map every page draws in `assets/map.js` (on the vendored Leaflet in
//! `assets/vendor/leaflet/`, BSD-2-Clause). The policy's `img-src` admits the tile server of
//! `maps.tile_url` when one is configured, and nothing else from elsewhere.

use std::sync::LazyLock;

use actix_web::{
    HttpRequest, HttpResponse,
    http::header::{self, HeaderValue},
    web,
};
use sha2::{Digest, Sha256};

/// A file served under `/assets/`.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:literal) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_bytes!(concat!("assets/", $name)),
        }
    };
}

/// Every script, style sheet and image the pages load.
static ASSETS: &[Asset] = &[
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("login.js", "text/javascript; charset=utf-8"),
    asset!("console.js", "text/javascript; charset=utf-8"),
    asset!("field.js", "text/javascript; charset=utf-8"),
    asset!("admin.js", "text/javascript; charset=utf-8"),
    asset!("admin.css", "text/css; charset=utf-8"),
    asset!("track.js", "text/javascript; charset=utf-8"),
    asset!("map.js", "text/javascript; charset=utf-8"),
    asset!("icon.svg", "image/svg+xml"),
    asset!("vendor/leaflet/leaflet.js", "text/javascript; charset=utf-8"),
    asset!("vendor/leaflet/leaflet.css", "text/css; charset=utf-8"),
    asset!("vendor/leaflet/LICENSE", "text/plain; charset=utf-8"),
    asset!("vendor/leaflet/images/layers.png", "image/png"),
    asset!("vendor/leaflet/images/layers-2x.png", "image/png"),
    asset!("vendor/leaflet/images/marker-icon.png", "image/png"),
    asset!("vendor/leaflet/images/marker-icon-2x.png", "image/png"),
    asset!("vendor/leaflet/images/marker-shadow.png", "image/png"),
];

/// A page: its path (an actix route pattern, e.g. `/track/{key}`) and its HTML (which refers to assets as
/// `/assets/NAME?v={{v}}`).
pub struct Page {
    pub path: &'static str,
    html: &'static str,
}

/// Every page, by path. `/` is the index that links to the others.
pub static PAGES: &[Page] = &[
    Page {
        path: "/",
        html: include_str!("assets/index.html"),
    },
    Page {
        path: "/login",
        html: include_str!("assets/login.html"),
    },
    Page {
        path: "/console",
        html: include_str!("assets/console.html"),
    },
    Page {
        path: "/field",
        html: include_str!("assets/field.html"),
    },
    Page {
        path: "/admin",
        html: include_str!("assets/admin.html"),
    },
    // An order by id (its customer, staff) or by share link token (anyone, read-only); the script tells
    // them apart (tokens are JWTs, with dots).
    Page {
        path: "/track/{key}",
        html: include_str!("assets/track.html"),
    },
    Page {
        path: "/track/ambulance/{id}",
        html: include_str!("assets/track.html"),
    },
];

/// Scripts, styles, images and the websocket only from this server; no inline code, no framing. Map
/// tiles, when a tile server is configured, are the one exception ([`Policy`]).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// What the pages are served with, from the settings: the Content-Security-Policy (admitting the tile
/// server's origin in `img-src` when `maps.tile_url` is set) and the map's settings the pages read from
/// `GET /api/v1/map/config`.
#[derive(Debug, Clone)]
pub struct Policy {
    csp: HeaderValue,
    /// The tile URL template, empty for the H3 grid base.
    pub tile_url: String,
    /// The tiles' credit (plain text).
    pub tile_attribution: String,
}

impl Policy {
    /// Checks `maps.tile_url` (an http(s) template with `{z}`, `{x}` and `{y}`; `{s}` only as the host's
    /// first label) and builds the policy. A bad template stops the server at start.
    pub fn new(maps: &crate::config::MapsSettings) -> anyhow::Result<Self> {
        let tile_url = maps.tile_url.trim().to_owned();
        let csp = if tile_url.is_empty() {
            CONTENT_SECURITY_POLICY.to_owned()
        } else {
            let origin = tile_origin(&tile_url)?;
            CONTENT_SECURITY_POLICY.replacen(
                "img-src 'self' data:",
                &format!("img-src 'self' data: {origin}"),
                1,
            )
        };
        Ok(Self {
            csp: HeaderValue::from_str(&csp)?,
            tile_url,
            tile_attribution: maps.tile_attribution.trim().to_owned(),
        })
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            csp: HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            tile_url: String::new(),
            tile_attribution: String::new(),
        }
    }
}

/// The CSP source of a tile URL template: `scheme://host[:port]`, with a `{s}` subdomain label as `*`.
pub fn tile_origin(template: &str) -> anyhow::Result<String> {
    let (scheme, rest) = template
        .split_once("://")
        .filter(|(scheme, _)| matches!(*scheme, "http" | "https"))
        .ok_or_else(|| anyhow::anyhow!("maps.tile_url must start with http:// or https://"))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    for placeholder in ["{z}", "{x}", "{y}"] {
        anyhow::ensure!(
            path.contains(placeholder),
            "maps.tile_url must contain {placeholder} in its path"
        );
    }
    let host = authority
        .strip_prefix("{s}.")
        .map_or(authority.to_owned(), |h| format!("*.{h}"));
    let plain = host.strip_prefix("*.").unwrap_or(&host);
    anyhow::ensure!(
        !plain.is_empty()
            && !plain.starts_with(['.', ':', '-'])
            && plain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':')),
        "maps.tile_url has an unusable host `{authority}` (letters, digits, dots, hyphens, a port, and `{{s}}.` \
         only as the first label)"
    );
    Ok(format!("{scheme}://{host}"))
}

/// Assets are requested with the build's version in the query, so they may be cached for a year; a new
/// build changes the version and so the URL.
const ASSET_CACHE: &str = "public, max-age=31536000, immutable";
/// Pages are revalidated on every load (cheaply, by ETag) so a new build is picked up at once.
const PAGE_CACHE: &str = "no-cache";

/// A short digest of every asset: the `v` in asset URLs.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut hash = Sha256::new();
    for asset in ASSETS {
        hash.update(asset.name.as_bytes());
        hash.update(asset.body);
    }
    hex::encode(&hash.finalize()[..6])
});

/// A page's HTML with the asset version filled in, and its ETag.
struct Rendered {
    body: String,
    etag: String,
}

static RENDERED: LazyLock<Vec<Rendered>> = LazyLock::new(|| {
    PAGES
        .iter()
        .map(|page| {
            let body = page.html.replace("{{v}}", &VERSION);
            let etag = etag_of(body.as_bytes());
            Rendered { body, etag }
        })
        .collect()
});

static ASSET_ETAGS: LazyLock<Vec<String>> =
    LazyLock::new(|| ASSETS.iter().map(|a| etag_of(a.body)).collect());

fn etag_of(body: &[u8]) -> String {
    format!("\"{}\"", hex::encode(&Sha256::digest(body)[..12]))
}

/// The headers every page and asset carries.
fn secured(req: &HttpRequest, mut builder: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    let csp = req
        .app_data::<web::Data<Policy>>()
        .map_or(HeaderValue::from_static(CONTENT_SECURITY_POLICY), |p| {
            p.csp.clone()
        });
    builder
        .insert_header((header::CONTENT_SECURITY_POLICY, csp))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"));
    builder
}

/// 304 when the client's `If-None-Match` names this ETag.
fn not_modified(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/") == etag
        })
}

fn respond(req: &HttpRequest, content_type: &str, cache: &str, etag: &str, body: Vec<u8>) -> HttpResponse {
    let mut builder = if not_modified(req, etag) {
        secured(req, HttpResponse::NotModified())
    } else {
        secured(req, HttpResponse::Ok())
    };
    builder
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header((header::ETAG, etag));
    if not_modified(req, etag) {
        return builder.finish();
    }
    builder
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("text/plain")),
        ))
        .body(body)
}

async fn page(req: HttpRequest) -> HttpResponse {
    let pattern = req.match_pattern();
    let found = PAGES
        .iter()
        .zip(RENDERED.iter())
        .find(|(page, _)| pattern.as_deref() == Some(page.path));
    match found {
        Some((_, rendered)) => respond(
            &req,
            "text/html; charset=utf-8",
            PAGE_CACHE,
            &rendered.etag,
            rendered.body.clone().into_bytes(),
        ),
        None => not_found(),
    }
}

async fn asset(req: HttpRequest, name: web::Path<String>) -> HttpResponse {
    let found = ASSETS
        .iter()
        .zip(ASSET_ETAGS.iter())
        .find(|(asset, _)| asset.name == name.as_str());
    match found {
        Some((asset, etag)) => {
            // Only the current build's URL may be cached for long; any other is revalidated.
            let current = req.query_string() == format!("v={}", *VERSION);
            let cache = if current { ASSET_CACHE } else { PAGE_CACHE };
            respond(&req, asset.content_type, cache, etag, asset.body.to_vec())
        }
        None => not_found(),
    }
}

fn not_found() -> HttpResponse {
    actix_web::ResponseError::error_response(&crate::error::ApiError::not_found("page"))
}

/// The version string assets are requested with (for tests and templates).
pub fn asset_version() -> &'static str {
    &VERSION
}

/// Registers every page and `/assets/{name}` (names may have folders: `vendor/leaflet/leaflet.js`; only
/// the listed names are served).
pub fn configure(config: &mut web::ServiceConfig, policy: Policy) {
    config.app_data(web::Data::new(policy));
    for page in PAGES {
        config.route(page.path, web::get().to(self::page));
    }
    config.route("/assets/{name:.+}", web::get().to(asset));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tile_template_gives_its_origin_with_subdomains_as_a_wildcard() {
        assert_eq!(
            tile_origin("https://{s}.tile.openstreetmap.org/{z}/{x}/{y}.png").unwrap(),
            "https://*.tile.openstreetmap.org"
        );
        assert_eq!(
            tile_origin("http://127.0.0.1:8081/tiles/{z}/{x}/{y}.png").unwrap(),
            "http://127.0.0.1:8081"
        );
        for bad in [
            "ftp://tiles.example/{z}/{x}/{y}.png",
            "https://tiles.example/{z}/{x}.png",
            "https://tiles.example;script-src/{z}/{x}/{y}",
            "https://a.{s}.example/{z}/{x}/{y}",
            "https:///{z}/{x}/{y}",
            "https://tiles example/{z}/{x}/{y}",
        ] {
            assert!(tile_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_policy_admits_the_tile_origin_for_images_only() {
        let maps = crate::config::MapsSettings {
            tile_url: "https://{s}.tiles.example/{z}/{x}/{y}.png".to_owned(),
            tile_attribution: String::new(),
        };
        let policy = Policy::new(&maps).unwrap();
        let csp = policy.csp.to_str().unwrap();
        assert!(
            csp.contains("img-src 'self' data: https://*.tiles.example;"),
            "{csp}"
        );
        assert!(csp.contains("connect-src 'self';"), "{csp}");
        assert_eq!(
            Policy::new(&crate::config::MapsSettings::default()).unwrap().csp,
            CONTENT_SECURITY_POLICY
        );
    }
}
