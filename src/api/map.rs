//! `/map`: the basemap the pages draw without a tile server — the outlines of the H3 cells around a
//! point, computed with h3o. Pure geometry, the same for everyone, so public and cacheable. And the
//! map's settings the pages read (a tile server, or none).

use actix_web::{HttpResponse, get, http::header, web};
use h3o::{LatLng, Resolution};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{Problems, parse_near};
use crate::error::{ApiError, ErrorBody};

/// Widest disk, kilometres.
pub const MAX_RADIUS_KM: f64 = 40.0;
/// Most cells one answer may hold.
pub const MAX_CELLS: usize = 5000;
/// Resolutions offered: 6 (~36 km² cells) to 9 (~0.1 km²).
const RESOLUTIONS: std::ops::RangeInclusive<u8> = 6..=9;
/// Coordinates are rounded to this many decimal places (≈ 1 m), which is plenty for drawing.
const DECIMALS: f64 = 1e5;

#[derive(Debug, Deserialize, IntoParams)]
pub struct CellsQuery {
    /// Centre, `lat,lng` in degrees.
    pub near: Option<String>,
    /// Radius of the disk of cells, 1–40 km (default 12).
    pub radius_km: Option<f64>,
    /// H3 resolution, 6–9 (default 7, cells ~5 km²).
    pub resolution: Option<u8>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CellOutline {
    /// The H3 index, as its usual hexadecimal string.
    pub cell: String,
    /// The cell's corners, `[lat, lng]` in degrees, in order (the ring is not closed).
    pub boundary: Vec<[f64; 2]>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CellMap {
    pub resolution: u8,
    /// The cell under the centre, which the disk is drawn around.
    pub center_cell: String,
    /// Rings of cells around the centre cell.
    pub rings: u32,
    pub cells: Vec<CellOutline>,
}

fn round(value: f64) -> f64 {
    (value * DECIMALS).round() / DECIMALS
}

/// The outlines of the H3 cells within `radius_km` of a point: the dispatcher console's basemap.
#[utoipa::path(
    tag = "map",
    params(CellsQuery),
    responses(
        (status = 200, body = CellMap, description = "Cacheable for a day"),
        (status = 400, description = "validation_failed (missing centre, radius or resolution out of range, too many cells)", body = ErrorBody),
    )
)]
#[get("/map/cells")]
pub async fn cells(query: web::Query<CellsQuery>) -> Result<HttpResponse, ApiError> {
    let mut p = Problems::default();
    let center = parse_near(&mut p, query.near.as_deref());
    if query.near.is_none() {
        p.add("near", "required: lat,lng in degrees");
    }
    let radius_km = query.radius_km.unwrap_or(12.0);
    if !(radius_km.is_finite() && (1.0..=MAX_RADIUS_KM).contains(&radius_km)) {
        p.add("radius_km", format!("must be between 1 and {MAX_RADIUS_KM}"));
    }
    let level = query.resolution.unwrap_or(7);
    let resolution = match Resolution::try_from(level) {
        Ok(r) if RESOLUTIONS.contains(&level) => Some(r),
        _ => {
            p.add("resolution", "must be between 6 and 9");
            None
        }
    };
    // Neighbouring centres are √3 edge lengths apart.
    let rings = resolution.map(|r| (radius_km / (r.edge_length_km() * 3f64.sqrt())).ceil().max(1.0) as u32);
    if let Some(k) = rings {
        let count = 3 * (k as usize) * (k as usize + 1) + 1;
        if count > MAX_CELLS {
            p.add(
                "radius_km",
                format!(
                    "{count} cells at this resolution; at most {MAX_CELLS}: shrink the radius or coarsen"
                ),
            );
        }
    }
    p.finish()?;
    let (Some(center), Some(resolution), Some(rings)) = (center, resolution, rings) else {
        return Err(ApiError::internal(anyhow::anyhow!(
            "validated map query incomplete"
        )));
    };
    let origin = LatLng::new(center.lat(), center.lng())
        .map_err(|e| ApiError::field("near", e.to_string()))?
        .to_cell(resolution);
    let disk: Vec<h3o::CellIndex> = origin.grid_disk(rings);
    let cells = disk
        .into_iter()
        .map(|cell| CellOutline {
            cell: cell.to_string(),
            boundary: cell
                .boundary()
                .iter()
                .map(|corner| [round(corner.lat()), round(corner.lng())])
                .collect(),
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .json(CellMap {
            resolution: level,
            center_cell: origin.to_string(),
            rings,
            cells,
        }))
}

/// How the pages draw their map.
#[derive(Debug, Serialize, ToSchema)]
pub struct MapConfig {
    /// Raster tile URL template (`{z}`, `{x}`, `{y}`, optionally `{s}`), or `null`: no tile server, the
    /// base is the H3 cell grid from `GET /map/cells`.
    pub tile_url: Option<String>,
    /// The tiles' credit to show on the map (plain text), if any.
    pub tile_attribution: Option<String>,
}

/// The map's settings (`maps.tile_url`, `maps.tile_attribution`): public, the same for everyone.
#[utoipa::path(tag = "map", responses((status = 200, body = MapConfig)))]
#[get("/map/config")]
pub async fn config(state: web::Data<crate::state::AppState>) -> HttpResponse {
    let maps = &state.settings.maps;
    let some = |text: &str| Some(text.trim().to_owned()).filter(|t| !t.is_empty());
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .json(MapConfig {
            tile_url: some(&maps.tile_url),
            tile_attribution: some(&maps.tile_attribution),
        })
}
