//! What generations cost: seconds of video per mode (what the service bills), summed, and
//! turned into money with prices the user gives (`--price std=P,pro=P`; there is no built-in
//! price list: prices differ by region and change).

use std::collections::BTreeMap;

use serde::Serialize;

/// Price per generated second, per mode.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Prices {
    /// wan-std.
    pub std: Option<f64>,
    /// wan-pro.
    pub pro: Option<f64>,
}

impl Prices {
    /// Parses `std=0.4,pro=0.6` (either part alone too; `wan-std=`/`wan-pro=` also accepted).
    pub fn parse(s: &str) -> Result<Prices, String> {
        let mut p = Prices::default();
        for part in s.split(',').map(str::trim).filter(|x| !x.is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(|| format!("'{part}' is not MODE=PRICE"))?;
            let v: f64 = v.trim().parse().map_err(|_| format!("'{}' is not a number", v.trim()))?;
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("price {v} must be a non-negative number"));
            }
            match k.trim() {
                "std" | "wan-std" => p.std = Some(v),
                "pro" | "wan-pro" => p.pro = Some(v),
                other => return Err(format!("unknown mode '{other}': use std and pro")),
            }
        }
        if p.std.is_none() && p.pro.is_none() {
            return Err("give at least one price, e.g. std=0.4,pro=0.6".into());
        }
        Ok(p)
    }

    /// The price for a mode (`wan-std` / `wan-pro`).
    pub fn for_mode(&self, mode: &str) -> Option<f64> {
        match mode {
            "wan-std" => self.std,
            "wan-pro" => self.pro,
            _ => None,
        }
    }
}

/// Seconds (and tasks) of one mode.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ModeSpend {
    /// Tasks counted.
    pub tasks: usize,
    /// Seconds of video.
    pub seconds: f64,
    /// `seconds` × the mode's price, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
}

/// Seconds of generated (or, for an estimate, to-be-generated) video per mode.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Spend {
    /// Whether these are estimates (the output lasts as long as the reference video) rather
    /// than the service's usage figures.
    pub estimate: bool,
    /// Per mode (`wan-std`, `wan-pro`).
    pub modes: BTreeMap<String, ModeSpend>,
    /// All seconds.
    pub total_seconds: f64,
    /// All costs, when every counted mode has a price.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_cost: Option<f64>,
}

impl Spend {
    /// Sums `(mode, seconds)` items; prices turn seconds into money.
    pub fn sum<'a>(estimate: bool, items: impl IntoIterator<Item = (&'a str, f64)>, prices: Option<&Prices>) -> Spend {
        let mut s = Spend { estimate, ..Default::default() };
        for (mode, seconds) in items {
            let m = s.modes.entry(mode.to_string()).or_default();
            m.tasks += 1;
            m.seconds += seconds;
        }
        let mut all_priced = true;
        let mut total_cost = 0.0;
        for (mode, m) in &mut s.modes {
            s.total_seconds += m.seconds;
            m.cost = prices.and_then(|p| p.for_mode(mode)).map(|p| p * m.seconds);
            match m.cost {
                Some(c) => total_cost += c,
                None => all_priced = false,
            }
        }
        if prices.is_some() && all_priced && !s.modes.is_empty() {
            s.total_cost = Some(total_cost);
        }
        s
    }

    /// One line for people: `wan-std 6.0 s (2 tasks) ≈ 2.40; wan-pro …; total 9.0 s ≈ …`.
    pub fn line(&self) -> String {
        if self.modes.is_empty() {
            return "0 s".into();
        }
        let cost = |c: Option<f64>| c.map(|c| format!(" = {c:.2}")).unwrap_or_default();
        let mut parts: Vec<String> = self
            .modes
            .iter()
            .map(|(mode, m)| {
                let n = if m.tasks == 1 { "1 task".to_string() } else { format!("{} tasks", m.tasks) };
                format!("{mode} {:.1} s ({n}){}", m.seconds, cost(m.cost))
            })
            .collect();
        if self.modes.len() > 1 {
            parts.push(format!("total {:.1} s{}", self.total_seconds, cost(self.total_cost)));
        }
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_parse_and_turn_seconds_into_money() {
        assert!(Prices::parse("").is_err());
        assert!(Prices::parse("std=-1").is_err());
        assert!(Prices::parse("turbo=1").is_err());
        let p = Prices::parse("std=0.4, pro=0.6").unwrap();
        let s = Spend::sum(false, [("wan-std", 3.0), ("wan-std", 2.0), ("wan-pro", 10.0)], Some(&p));
        assert_eq!(s.modes["wan-std"].tasks, 2);
        assert!((s.modes["wan-std"].cost.unwrap() - 2.0).abs() < 1e-9);
        assert!((s.total_cost.unwrap() - 8.0).abs() < 1e-9);
        assert_eq!(s.total_seconds, 15.0);
        let only_std = Prices::parse("std=0.4").unwrap();
        assert_eq!(Spend::sum(false, [("wan-pro", 1.0)], Some(&only_std)).total_cost, None, "a mode without a price");
        assert!(s.line().contains("wan-std 5.0 s (2 tasks) = 2.00"), "{}", s.line());
    }
}
