//! The medicine order's state machine and its money arithmetic (integer paise only).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where an order is in its life. Stored as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    Confirmed,
    Packed,
    Shipped,
    OutForDelivery,
    Delivered,
    Cancelled,
}

/// A move the state machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an order cannot go from {from} to {to}")]
pub struct IllegalTransition {
    pub from: OrderStatus,
    pub to: OrderStatus,
}

impl OrderStatus {
    /// Every status, in the order of the delivery chain, then `cancelled`.
    pub const ALL: [Self; 7] = [
        Self::Pending,
        Self::Confirmed,
        Self::Packed,
        Self::Shipped,
        Self::OutForDelivery,
        Self::Delivered,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Confirmed => "confirmed",
            Self::Packed => "packed",
            Self::Shipped => "shipped",
            Self::OutForDelivery => "out_for_delivery",
            Self::Delivered => "delivered",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "confirmed" => Self::Confirmed,
            "packed" => Self::Packed,
            "shipped" => Self::Shipped,
            "out_for_delivery" => Self::OutForDelivery,
            "delivered" => Self::Delivered,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }

    /// The one transition function: forward one step along the delivery chain, or cancel before the
    /// parcel leaves the pharmacy (pending, confirmed, packed).
    pub fn transition(self, to: Self) -> Result<Self, IllegalTransition> {
        use OrderStatus::*;
        let legal = matches!(
            (self, to),
            (Pending, Confirmed)
                | (Confirmed, Packed)
                | (Packed, Shipped)
                | (Shipped, OutForDelivery)
                | (OutForDelivery, Delivered)
                | (Pending | Confirmed | Packed, Cancelled)
        );
        if legal {
            Ok(to)
        } else {
            Err(IllegalTransition { from: self, to })
        }
    }

    /// Whether the customer may still cancel on their own (before packing starts).
    pub fn customer_may_cancel(self) -> bool {
        matches!(self, Self::Pending | Self::Confirmed)
    }
}

impl std::fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the customer pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    Razorpay,
    Cod,
}

impl PaymentMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Razorpay => "razorpay",
            Self::Cod => "cod",
        }
    }
}

/// Orders whose value after discount is below this pay [`DELIVERY_FEE_PAISE`] (₹499).
pub const FREE_DELIVERY_THRESHOLD_PAISE: i64 = 49_900;
/// The delivery fee below the threshold (₹49).
pub const DELIVERY_FEE_PAISE: i64 = 4_900;

/// `numerator / denominator` rounded half up, for non-negative operands; 0 when the denominator is 0.
fn div_round_half_up(numerator: i128, denominator: i128) -> i64 {
    if denominator <= 0 {
        return 0;
    }
    let rounded = (2 * numerator + denominator) / (2 * denominator);
    i64::try_from(rounded).unwrap_or(i64::MAX)
}

/// One priced line: unit price (paise), quantity and the medicine's GST rate in percent.
#[derive(Debug, Clone, Copy)]
pub struct PricedLine {
    pub unit_price_paise: i64,
    pub quantity: i32,
    pub gst_rate_percent: i32,
}

impl PricedLine {
    pub fn line_total_paise(self) -> i64 {
        self.unit_price_paise.saturating_mul(i64::from(self.quantity))
    }
}

/// The money of an order, all in paise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct Totals {
    pub subtotal_paise: i64,
    pub discount_paise: i64,
    pub tax_paise: i64,
    pub delivery_paise: i64,
    pub total_paise: i64,
}

/// Computes the totals. Prices are before GST. Rounding, documented once:
/// - each line's GST is `line_total × rate / 100`, rounded half up to the paisa;
/// - a discount lowers the taxable value, so the summed GST is scaled by
///   `(subtotal − discount) / subtotal`, again rounded half up;
/// - delivery is charged when `subtotal − discount` is below the free-delivery threshold.
///
/// The discount is clamped to the subtotal.
pub fn totals(lines: &[PricedLine], discount_paise: i64) -> Totals {
    let subtotal: i64 = lines.iter().map(|l| l.line_total_paise()).sum();
    let discount = discount_paise.clamp(0, subtotal);
    let gross_tax: i64 = lines
        .iter()
        .map(|l| {
            div_round_half_up(
                i128::from(l.line_total_paise()) * i128::from(l.gst_rate_percent),
                100,
            )
        })
        .sum();
    let taxable = subtotal - discount;
    let tax = div_round_half_up(i128::from(gross_tax) * i128::from(taxable), i128::from(subtotal));
    let delivery = if taxable < FREE_DELIVERY_THRESHOLD_PAISE {
        DELIVERY_FEE_PAISE
    } else {
        0
    };
    Totals {
        subtotal_paise: subtotal,
        discount_paise: discount,
        tax_paise: tax,
        delivery_paise: delivery,
        total_paise: taxable + tax + delivery,
    }
}

/// A coupon's discount rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscountRule {
    /// A percentage (1..=100) of the subtotal, rounded down to the paisa.
    Percent(i64),
    /// A fixed amount in paise.
    Flat(i64),
}

/// The discount a rule gives on `subtotal`, capped by `max_discount` and by the subtotal itself.
pub fn discount(rule: DiscountRule, subtotal_paise: i64, max_discount_paise: Option<i64>) -> i64 {
    let raw = match rule {
        DiscountRule::Percent(percent) => {
            i64::try_from(i128::from(subtotal_paise) * i128::from(percent.clamp(0, 100)) / 100)
                .unwrap_or(i64::MAX)
        }
        DiscountRule::Flat(amount) => amount.max(0),
    };
    let capped = max_discount_paise.map_or(raw, |cap| raw.min(cap));
    capped.clamp(0, subtotal_paise.max(0))
}

/// Paise as rupees with Indian digit grouping and two decimals: `12345678` → `1,23,456.78`.
pub fn rupees(paise: i64) -> String {
    let sign = if paise < 0 { "-" } else { "" };
    let paise = paise.unsigned_abs();
    let digits = (paise / 100).to_string();
    let grouped = if digits.len() <= 3 {
        digits
    } else {
        let (head, last3) = digits.split_at(digits.len() - 3);
        let mut out = String::new();
        for (i, ch) in head.chars().enumerate() {
            if i > 0 && (head.len() - i) % 2 == 0 {
                out.push(',');
            }
            out.push(ch);
        }
        format!("{out},{last3}")
    };
    format!("{sign}{grouped}.{:02}", paise % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rupees_use_indian_grouping_and_two_decimals() {
        assert_eq!(rupees(0), "0.00");
        assert_eq!(rupees(5), "0.05");
        assert_eq!(rupees(99_900), "999.00");
        assert_eq!(rupees(123_456), "1,234.56");
        assert_eq!(rupees(12_345_678), "1,23,456.78");
        assert_eq!(rupees(1_234_567_890), "1,23,45,678.90");
        assert_eq!(rupees(-4_900), "-49.00");
    }

    #[test]
    fn only_the_delivery_chain_and_early_cancels_are_legal() {
        use OrderStatus::*;
        let chain = [Pending, Confirmed, Packed, Shipped, OutForDelivery, Delivered];
        for pair in chain.windows(2) {
            assert_eq!(pair[0].transition(pair[1]), Ok(pair[1]));
            assert!(pair[1].transition(pair[0]).is_err(), "no way back");
        }
        assert!(Pending.transition(Packed).is_err(), "no skipping");
        for from in [Pending, Confirmed, Packed] {
            assert!(from.transition(Cancelled).is_ok());
        }
        for from in [Shipped, OutForDelivery, Delivered, Cancelled] {
            assert!(from.transition(Cancelled).is_err());
        }
        assert!(Cancelled.transition(Pending).is_err());
        for status in chain {
            assert_eq!(OrderStatus::parse(status.as_str()), Some(status));
        }
    }

    #[test]
    fn totals_round_gst_half_up_and_charge_delivery_below_the_threshold() {
        let lines = [
            PricedLine {
                unit_price_paise: 12_345,
                quantity: 1,
                gst_rate_percent: 12,
            },
            PricedLine {
                unit_price_paise: 1_000,
                quantity: 3,
                gst_rate_percent: 5,
            },
        ];
        // 12345 × 12% = 1481.4 → 1481; 3000 × 5% = 150.
        let t = totals(&lines, 0);
        assert_eq!(t.subtotal_paise, 15_345);
        assert_eq!(t.tax_paise, 1_631);
        assert_eq!(t.delivery_paise, DELIVERY_FEE_PAISE);
        assert_eq!(t.total_paise, 15_345 + 1_631 + DELIVERY_FEE_PAISE);

        let big = [PricedLine {
            unit_price_paise: 50_000,
            quantity: 1,
            gst_rate_percent: 12,
        }];
        let t = totals(&big, 10_000);
        assert_eq!(
            t.delivery_paise, DELIVERY_FEE_PAISE,
            "40000 after discount is below 49900"
        );
        assert_eq!(t.tax_paise, 4_800, "6000 scaled by 40000/50000");
        assert_eq!(totals(&big, 0).delivery_paise, 0);
        assert_eq!(
            totals(&big, 99_999).discount_paise,
            50_000,
            "discount clamped to the subtotal"
        );
    }

    #[test]
    fn discounts_respect_caps() {
        assert_eq!(discount(DiscountRule::Percent(10), 19_999, None), 1_999);
        assert_eq!(discount(DiscountRule::Percent(10), 500_000, Some(10_000)), 10_000);
        assert_eq!(discount(DiscountRule::Flat(5_000), 3_000, None), 3_000);
    }
}
