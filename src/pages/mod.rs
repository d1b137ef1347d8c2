//! The pages people use (login, dispatcher console, field view, tracking, back office), embedded in the
//! binary and served with content types, cache validators and a strict Content-Security-Policy. One route
//! list: add a page by adding its HTML to `assets/` and a line to [`PAGES`]; shared code lives in
//! `assets/app.js`.

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
    asset!("icon.svg", "image/svg+xml"),
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

/// Scripts, styles, images and the websocket only from this server; no inline code, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

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
fn secured(mut builder: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    builder
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
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
        secured(HttpResponse::NotModified())
    } else {
        secured(HttpResponse::Ok())
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

/// Registers every page and `/assets/{name}`.
pub fn configure(config: &mut web::ServiceConfig) {
    for page in PAGES {
        config.route(page.path, web::get().to(self::page));
    }
    config.route("/assets/{name}", web::get().to(asset));
}
