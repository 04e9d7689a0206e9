//! `area()` and `distance()` over ODK geopoints (`lat lon alt acc`), geotraces and geoshapes
//! (`;`-separated points), with the same spherical model as ODK Collect: an Earth of equatorial
//! radius 6 378 100 m, great-circle distances, and a shoelace area on an equirectangular
//! projection around the first point.

/// The radius ODK Collect (JavaRosa `GeoUtils`) uses.
const EARTH_RADIUS_M: f64 = 6_378_100.0;

/// A geopoint's latitude and longitude; altitude and accuracy are ignored.
pub(super) fn point(text: &str) -> Result<(f64, f64), String> {
    let mut parts = text.split_whitespace();
    let mut coord = |what: &str, limit: f64| -> Result<f64, String> {
        let v: f64 = parts
            .next()
            .and_then(|p| p.parse().ok())
            .filter(|v: &f64| v.is_finite() && v.abs() <= limit)
            .ok_or_else(|| {
                format!("{text:?} is not a geopoint; write `latitude longitude altitude accuracy` with a {what} within ±{limit}")
            })?;
        Ok(v)
    };
    let lat = coord("latitude", 90.0)?;
    let lon = coord("longitude", 180.0)?;
    Ok((lat, lon))
}

/// Total great-circle length of the path through `points`, in metres.
pub(super) fn distance(points: &[(f64, f64)]) -> f64 {
    points
        .windows(2)
        .map(|w| {
            let ((lat1, lon1), (lat2, lon2)) = (w[0], w[1]);
            let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
            let dl = (lon1 - lon2).to_radians();
            let cos = (p1.sin() * p2.sin() + p1.cos() * p2.cos() * dl.cos()).clamp(-1.0, 1.0);
            cos.acos() * EARTH_RADIUS_M
        })
        .sum()
}

/// Area enclosed by `points` (a closed shape or not), in square metres; 0 below 3 points.
pub(super) fn area(points: &[(f64, f64)]) -> f64 {
    let Some(&(lat0, lon0)) = points.first() else {
        return 0.0;
    };
    if points.len() < 3 {
        return 0.0;
    }
    let circumference = 2.0 * EARTH_RADIUS_M * std::f64::consts::PI;
    let xy: Vec<(f64, f64)> = points[1..]
        .iter()
        .map(|&(lat, lon)| {
            let y = (lat - lat0) * circumference / 360.0;
            let x = (lon - lon0) * circumference * lat.to_radians().cos() / 360.0;
            (x, y)
        })
        .collect();
    let twice: f64 = xy
        .windows(2)
        .map(|w| w[0].1 * w[1].0 - w[0].0 * w[1].1)
        .sum();
    (twice / 2.0).abs()
}
