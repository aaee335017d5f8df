//! Card transactions with a fraud label (`is_fraud`), the stream of the demo.
//!
//! The cards are issued by a euro-area bank, so `amount` is the billing amount in EUR;
//! `currency` is the merchant's currency and `country` the merchant's country. Each of
//! 200 000 cards has a stable number (16 digits, Luhn-valid, tagged for PII hashing),
//! holder age, home country and opening date, all derived from the seed; `hour` is the
//! local hour at the cardholder's location and `event_time` advances one second per
//! event from 2026-01-05T00:00:00Z.
//!
//! About 3% of events are fraud (before label noise). Legitimate traffic never
//! changes; the fraud scheme does, one per concept, cycling:
//!
//! 0. **Stolen card details**: large card-not-present purchases (electronics, travel,
//!    fashion), mostly abroad, far from home, at night.
//! 1. **Card testing**: bursts of tiny online amounts in digital goods and gaming at a
//!    handful of merchants, with a high `velocity_1h`, at ordinary hours near home.
//! 2. **ATM cash-out**: cloned cards, mostly of recently opened accounts, withdrawing
//!    round sums of 200–1000 at ATMs in the evening, often abroad.
//!
//! A model that learned scheme 0 therefore misses nearly all fraud of scheme 1.

use super::{mix64, splitmix64, standard_normal, weighted_index};
use crate::Row;
use freshet_core::{Field, FieldType, PiiAction, Schema, Value};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Name of the label column.
pub(super) const LABEL: &str = "is_fraud";

/// Share of fraudulent events before label noise.
const FRAUD_RATE: f64 = 0.03;
/// Number of distinct cards.
const CARDS: u64 = 200_000;
/// One card in this many belongs to an account opened in the 45 days before the start.
const NEW_ACCOUNT_EVERY: u64 = 25;
/// Merchants per category.
const MERCHANTS_PER_CATEGORY: u32 = 2_000;
/// `event_time` of event 0: 2026-01-05T00:00:00Z, in microseconds.
const BASE_TIME_MICROS: i64 = 1_767_571_200_000_000;
/// Time between consecutive events, in microseconds.
const STEP_MICROS: i64 = 1_000_000;

const MAX_AMOUNT: f64 = 25_000.0;
const MAX_DISTANCE_KM: f64 = 20_000.0;
const MAX_VELOCITY: i64 = 100;

/// Merchant categories; the index order is used by the weight tables below.
const CATEGORIES: [&str; 12] = [
    "grocery",
    "restaurant",
    "fuel",
    "transport",
    "travel",
    "electronics",
    "fashion",
    "digital_goods",
    "gaming",
    "pharmacy",
    "utilities",
    "cash_withdrawal",
];
const CASH: usize = 11;
/// Median legitimate amount (EUR) per category.
const MEDIAN_AMOUNT: [f64; 12] = [
    35.0, 28.0, 55.0, 12.0, 240.0, 180.0, 70.0, 12.0, 20.0, 18.0, 80.0, 100.0,
];
/// Legitimate category mix at points of sale.
const POS_MIX: [f64; 12] = [
    30.0, 22.0, 12.0, 8.0, 2.0, 5.0, 8.0, 0.0, 0.0, 8.0, 0.0, 0.0,
];
/// Legitimate category mix online.
const ONLINE_MIX: [f64; 12] = [
    10.0, 10.0, 0.0, 6.0, 12.0, 14.0, 18.0, 15.0, 6.0, 2.0, 15.0, 0.0,
];
/// Categories of stolen-details fraud (scheme 0).
const STOLEN_MIX: [f64; 12] = [
    0.0, 0.0, 0.0, 0.0, 25.0, 40.0, 20.0, 5.0, 5.0, 0.0, 5.0, 0.0,
];
/// Categories of card testing (scheme 1).
const TESTING_MIX: [f64; 12] = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 5.0, 55.0, 35.0, 0.0, 5.0, 0.0];

/// Payment channels.
const CHANNELS: [&str; 3] = ["pos", "online", "atm"];
const POS: usize = 0;
const ONLINE: usize = 1;
const ATM: usize = 2;
/// Legitimate channel mix.
const CHANNEL_MIX: [f64; 3] = [62.0, 30.0, 8.0];

/// Merchant countries and their currencies; the first `HOME_COUNTRIES` are the
/// cardholders' home countries.
const COUNTRIES: [(&str, &str); 18] = [
    ("DE", "EUR"),
    ("FR", "EUR"),
    ("NL", "EUR"),
    ("ES", "EUR"),
    ("IT", "EUR"),
    ("AT", "EUR"),
    ("BE", "EUR"),
    ("GB", "GBP"),
    ("CH", "CHF"),
    ("SE", "SEK"),
    ("PL", "PLN"),
    ("US", "USD"),
    ("CA", "CAD"),
    ("JP", "JPY"),
    ("BR", "BRL"),
    ("SG", "SGD"),
    ("AE", "AED"),
    ("TR", "TRY"),
];
const HOME_COUNTRIES: u64 = 7;
const CURRENCIES: [&str; 12] = [
    "EUR", "GBP", "CHF", "SEK", "PLN", "USD", "CAD", "JPY", "BRL", "SGD", "AED", "TRY",
];

/// Relative frequency of legitimate transactions by local hour.
const HOUR_MIX: [f64; 24] = [
    1.0, 0.5, 0.3, 0.2, 0.2, 0.4, 1.0, 2.5, 4.0, 5.0, 5.5, 6.0, 7.0, 6.0, 5.5, 5.5, 6.0, 7.0, 7.5,
    7.0, 6.0, 4.5, 3.0, 2.0,
];

/// The card transaction schema, label last; every field is required.
pub(super) fn schema() -> Schema {
    let string = |name: &str| Field::new(name, FieldType::String).required();
    let float = |name: &str, max: f64| {
        Field::new(name, FieldType::Float)
            .required()
            .range(Some(0.0), Some(max))
    };
    let int = |name: &str, min: f64, max: Option<f64>| {
        Field::new(name, FieldType::Int)
            .required()
            .range(Some(min), max)
    };
    let bounded = |mut f: Field, len: usize| {
        f.max_length = Some(len);
        f
    };
    Schema::new(vec![
        bounded(string("transaction_id"), 19),
        Field::new("event_time", FieldType::Timestamp).required(),
        bounded(string("card_id"), 16).pii(PiiAction::Hash),
        bounded(string("merchant_id"), 7),
        string("merchant_category").categories(CATEGORIES),
        float("amount", MAX_AMOUNT),
        string("currency").categories(CURRENCIES),
        string("country").categories(COUNTRIES.iter().map(|(c, _)| *c)),
        string("channel").categories(CHANNELS),
        Field::new("card_present", FieldType::Bool).required(),
        int("hour", 0.0, Some(23.0)),
        float("distance_from_home_km", MAX_DISTANCE_KM),
        int("velocity_1h", 0.0, Some(MAX_VELOCITY as f64)),
        int("customer_age", 18.0, Some(100.0)),
        int("account_age_days", 0.0, None),
        int(LABEL, 0.0, Some(1.0)),
    ])
}

/// The stable attributes of one card.
#[derive(Debug, Clone, PartialEq)]
struct Card {
    number: String,
    holder_age: i64,
    home: usize,
    /// Days between the account's opening and event 0.
    opened_days_before: i64,
}

/// One transaction before it becomes a row.
#[derive(Debug, Clone, PartialEq)]
struct Transaction {
    card: u64,
    channel: usize,
    category: usize,
    merchant: u32,
    amount: f64,
    country: usize,
    distance_km: f64,
    hour: usize,
    velocity: i64,
    fraud: bool,
}

/// The card generator; its only state is the salt derived from the seed.
#[derive(Debug, Clone)]
pub(super) struct Cards {
    salt: u64,
}

impl Cards {
    /// A generator whose cards, ids and merchants derive from `salt`.
    pub(super) fn new(salt: u64) -> Self {
        Self { salt }
    }

    /// The event at `position` under concept `concept`.
    pub(super) fn row(&self, rng: &mut ChaCha8Rng, position: u64, concept: usize) -> Row {
        let tx = if rng.random::<f64>() < FRAUD_RATE {
            match concept % 3 {
                0 => stolen_details(rng),
                1 => card_testing(rng),
                _ => atm_cash_out(rng),
            }
        } else {
            legitimate(rng)
        };
        self.render(&tx, position)
    }

    /// The attributes of card `index`.
    fn card(&self, index: u64) -> Card {
        let mut state = self.salt ^ mix64(index);
        let digits = splitmix64(&mut state) % 100_000_000_000_000;
        let body = format!("4{digits:014}");
        let number = format!("{body}{}", luhn_check_digit(&body));
        let holder_age = 18 + (splitmix64(&mut state) % 73) as i64;
        let home = (splitmix64(&mut state) % HOME_COUNTRIES) as usize;
        let r = splitmix64(&mut state);
        let opened_days = if index.is_multiple_of(NEW_ACCOUNT_EVERY) {
            1 + r % 45
        } else {
            46 + r % 4_000
        };
        let opened_days_before = opened_days as i64;
        Card {
            number,
            holder_age,
            home,
            opened_days_before,
        }
    }

    fn render(&self, tx: &Transaction, position: u64) -> Row {
        let card = self.card(tx.card);
        let elapsed_micros = i64::try_from(position)
            .unwrap_or(i64::MAX)
            .saturating_mul(STEP_MICROS);
        let country = if tx.country == HOME_SENTINEL {
            card.home
        } else {
            tx.country
        };
        let (country_code, currency) = COUNTRIES.get(country).copied().unwrap_or(COUNTRIES[0]);
        vec![
            Value::Str(format!("tx_{:016x}", mix64(position ^ self.salt))),
            Value::Timestamp(BASE_TIME_MICROS.saturating_add(elapsed_micros)),
            Value::Str(card.number),
            Value::Str(format!("M{:06}", tx.merchant)),
            Value::Str(CATEGORIES[tx.category].to_string()),
            Value::Float(round_to(tx.amount.clamp(0.0, MAX_AMOUNT), 100.0)),
            Value::Str(currency.to_string()),
            Value::Str(country_code.to_string()),
            Value::Str(CHANNELS[tx.channel].to_string()),
            Value::Bool(tx.channel != ONLINE && !(tx.fraud && tx.channel == POS)),
            Value::Int(tx.hour as i64),
            Value::Float(round_to(tx.distance_km.clamp(0.0, MAX_DISTANCE_KM), 10.0)),
            Value::Int(tx.velocity.clamp(0, MAX_VELOCITY)),
            Value::Int(card.holder_age),
            Value::Int(card.opened_days_before + elapsed_micros / (86_400 * 1_000_000)),
            Value::Int(i64::from(tx.fraud)),
        ]
    }
}

/// Country placeholder meaning "the card's home country", resolved when rendering.
const HOME_SENTINEL: usize = usize::MAX;

/// A legitimate transaction.
fn legitimate(rng: &mut ChaCha8Rng) -> Transaction {
    let card = rng.random_range(0..CARDS);
    let channel = weighted_index(rng, &CHANNEL_MIX);
    let category = match channel {
        POS => weighted_index(rng, &POS_MIX),
        ONLINE => weighted_index(rng, &ONLINE_MIX),
        _ => CASH,
    };
    let amount = if category == CASH {
        round_withdrawal(rng)
    } else {
        lognormal(rng, MEDIAN_AMOUNT[category], 0.8)
    };
    let abroad = rng.random::<f64>() < if channel == ONLINE { 0.15 } else { 0.04 };
    let country = if abroad {
        foreign_country(rng)
    } else {
        HOME_SENTINEL
    };
    let travelling = abroad && channel != ONLINE;
    let distance_km = if travelling {
        far_away(rng, 1_200.0)
    } else if rng.random::<f64>() < 0.06 {
        rng.random_range(20.0..400.0)
    } else {
        exponential(rng, 8.0)
    };
    Transaction {
        card,
        channel,
        category,
        merchant: merchant(rng, category, MERCHANTS_PER_CATEGORY),
        amount,
        country,
        distance_km,
        hour: weighted_index(rng, &HOUR_MIX),
        velocity: geometric(rng, 0.45),
        fraud: false,
    }
}

/// Scheme 0: stolen card details, large card-not-present purchases abroad at night.
fn stolen_details(rng: &mut ChaCha8Rng) -> Transaction {
    let card = rng.random_range(0..CARDS);
    let channel = if rng.random::<f64>() < 0.8 {
        ONLINE
    } else {
        POS
    };
    let category = weighted_index(rng, &STOLEN_MIX);
    let amount = lognormal(rng, 650.0, 0.5);
    let country = if rng.random::<f64>() < 0.75 {
        foreign_country(rng)
    } else {
        HOME_SENTINEL
    };
    let distance_km = if rng.random::<f64>() < 0.85 {
        far_away(rng, 2_500.0)
    } else {
        exponential(rng, 30.0)
    };
    let hour = if rng.random::<f64>() < 0.7 {
        rng.random_range(0..6)
    } else {
        weighted_index(rng, &HOUR_MIX)
    };
    Transaction {
        card,
        channel,
        category,
        merchant: merchant(rng, category, MERCHANTS_PER_CATEGORY),
        amount,
        country,
        distance_km,
        hour,
        velocity: geometric(rng, 0.45),
        fraud: true,
    }
}

/// Scheme 1: card testing, bursts of tiny online amounts at a few merchants.
fn card_testing(rng: &mut ChaCha8Rng) -> Transaction {
    let card = rng.random_range(0..CARDS);
    let category = weighted_index(rng, &TESTING_MIX);
    let amount = if rng.random::<f64>() < 0.3 {
        [1.0, 2.0, 5.0, 10.0][rng.random_range(0..4)]
    } else {
        rng.random_range(0.5..12.0)
    };
    let country = if rng.random::<f64>() < 0.65 {
        HOME_SENTINEL
    } else {
        foreign_country(rng)
    };
    Transaction {
        card,
        channel: ONLINE,
        category,
        merchant: merchant(rng, category, 40),
        amount,
        country,
        distance_km: exponential(rng, 40.0),
        hour: weighted_index(rng, &HOUR_MIX),
        velocity: rng.random_range(8..=40),
        fraud: true,
    }
}

/// Scheme 2: ATM cash-out with cloned cards, mostly of new accounts.
fn atm_cash_out(rng: &mut ChaCha8Rng) -> Transaction {
    let card = if rng.random::<f64>() < 0.7 {
        NEW_ACCOUNT_EVERY * rng.random_range(0..CARDS / NEW_ACCOUNT_EVERY)
    } else {
        rng.random_range(0..CARDS)
    };
    let abroad = rng.random::<f64>() < 0.6;
    let country = if abroad {
        foreign_country(rng)
    } else {
        HOME_SENTINEL
    };
    let distance_km = if abroad {
        far_away(rng, 800.0)
    } else {
        lognormal(rng, 120.0, 0.7)
    };
    let hour = if rng.random::<f64>() < 0.6 {
        rng.random_range(18..24)
    } else {
        weighted_index(rng, &HOUR_MIX)
    };
    Transaction {
        card,
        channel: ATM,
        category: CASH,
        merchant: merchant(rng, CASH, MERCHANTS_PER_CATEGORY),
        amount: 50.0 * f64::from(rng.random_range(4u32..=20)),
        country,
        distance_km,
        hour,
        velocity: rng.random_range(2..=6),
        fraud: true,
    }
}

/// A merchant of `category`, among the first `pool` of that category. Merchant numbers
/// interleave categories, so a merchant's number determines its category.
fn merchant(rng: &mut ChaCha8Rng, category: usize, pool: u32) -> u32 {
    rng.random_range(0..pool.max(1)) * CATEGORIES.len() as u32 + category as u32
}

/// A country outside the home countries.
fn foreign_country(rng: &mut ChaCha8Rng) -> usize {
    rng.random_range(HOME_COUNTRIES as usize..COUNTRIES.len())
}

/// A distance abroad: at least 300 km, typically `median` km.
fn far_away(rng: &mut ChaCha8Rng, median: f64) -> f64 {
    300.0 + lognormal(rng, median, 0.6)
}

/// A legitimate ATM withdrawal: a round sum.
fn round_withdrawal(rng: &mut ChaCha8Rng) -> f64 {
    [20.0, 50.0, 100.0, 200.0, 300.0, 400.0][weighted_index(rng, &[2.0, 3.0, 4.0, 3.0, 1.0, 1.0])]
}

fn lognormal(rng: &mut ChaCha8Rng, median: f64, sigma: f64) -> f64 {
    (median * (sigma * standard_normal(rng)).exp()).max(0.5)
}

fn exponential(rng: &mut ChaCha8Rng, mean: f64) -> f64 {
    -mean * (1.0 - rng.random::<f64>()).ln()
}

/// Number of successes before the first failure, success probability `p`, capped at 12.
fn geometric(rng: &mut ChaCha8Rng, p: f64) -> i64 {
    let mut k = 0;
    while k < 12 && rng.random::<f64>() < p {
        k += 1;
    }
    k
}

fn round_to(x: f64, scale: f64) -> f64 {
    (x * scale).round() / scale
}

/// The Luhn check digit that completes `body` (a string of ASCII digits).
fn luhn_check_digit(body: &str) -> u32 {
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b.saturating_sub(b'0'));
            if i % 2 == 0 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    (10 - sum % 10) % 10
}

#[cfg(test)]
mod tests {
    use super::super::Generator;
    use super::super::tests::config;
    use super::*;
    use freshet_core::config::{DriftPoint, GeneratorKind};

    /// The fields the tests look at.
    struct View {
        amount: f64,
        card_present: bool,
        distance: f64,
        hour: i64,
        velocity: i64,
        fraud: bool,
    }

    fn view(schema: &Schema, row: &Row) -> View {
        let get = |name: &str| {
            schema
                .index_of(name)
                .and_then(|i| row.get(i))
                .cloned()
                .unwrap_or(Value::Null)
        };
        let float = |name: &str| match get(name) {
            Value::Float(f) => f,
            other => panic!("{name} is {other:?}"),
        };
        let int = |name: &str| match get(name) {
            Value::Int(i) => i,
            other => panic!("{name} is {other:?}"),
        };
        View {
            amount: float("amount"),
            card_present: get("card_present") == Value::Bool(true),
            distance: float("distance_from_home_km"),
            hour: int("hour"),
            velocity: int("velocity_1h"),
            fraud: int(LABEL) == 1,
        }
    }

    /// A rule written for scheme 0.
    fn stolen_details_rule(v: &View) -> bool {
        v.amount >= 250.0 && !v.card_present && (v.distance > 300.0 || v.hour < 6)
    }

    /// Recall and precision of `rule` on `rows`.
    fn score(schema: &Schema, rows: &[Row], rule: impl Fn(&View) -> bool) -> (f64, f64) {
        let (mut tp, mut fp, mut fraud) = (0.0, 0.0, 0.0);
        for row in rows {
            let v = view(schema, row);
            let flagged = rule(&v);
            fraud += f64::from(u8::from(v.fraud));
            tp += f64::from(u8::from(flagged && v.fraud));
            fp += f64::from(u8::from(flagged && !v.fraud));
        }
        (tp / fraud.max(1.0), tp / (tp + fp).max(1.0))
    }

    fn drifting(seed: u64) -> Generator {
        let mut cfg = config(GeneratorKind::Cards, seed);
        cfg.drift = vec![
            DriftPoint {
                at: 40_000,
                width: 0,
            },
            DriftPoint {
                at: 80_000,
                width: 0,
            },
        ];
        Generator::new(&cfg)
    }

    #[test]
    fn fraud_rate_is_a_few_percent() {
        let g = drifting(1);
        for concept in 0..3u64 {
            let mut g = g.clone();
            g.seek(concept * 40_000);
            let fraud = g
                .take(20_000)
                .filter(|r| r.last() == Some(&Value::Int(1)))
                .count() as f64
                / 20_000.0;
            assert!((0.02..=0.05).contains(&fraud), "concept {concept}: {fraud}");
        }
    }

    #[test]
    fn a_rule_for_concept_0_fails_on_concept_1() {
        let g = drifting(2);
        let schema = g.schema().clone();
        let rows: Vec<Row> = g.take(120_000).collect();
        let (recall_0, precision_0) = score(&schema, &rows[..40_000], stolen_details_rule);
        let (recall_1, _) = score(&schema, &rows[40_000..80_000], stolen_details_rule);
        let (recall_2, _) = score(&schema, &rows[80_000..], stolen_details_rule);
        assert!(
            recall_0 > 0.6 && precision_0 > 0.7,
            "concept 0: {recall_0} {precision_0}"
        );
        assert!(recall_1 < 0.05, "concept 1: {recall_1}");
        assert!(recall_2 < 0.05, "concept 2: {recall_2}");
        // Concept 1 has its own signature: high velocity.
        let (recall_v, precision_v) = score(&schema, &rows[40_000..80_000], |v| v.velocity >= 8);
        assert!(
            recall_v > 0.9 && precision_v > 0.8,
            "{recall_v} {precision_v}"
        );
        let (recall_v0, _) = score(&schema, &rows[..40_000], |v| v.velocity >= 8);
        assert!(recall_v0 < 0.05, "{recall_v0}");
    }

    #[test]
    fn rendered_rows_are_about_300_bytes_of_json() {
        let g = drifting(3);
        let schema = g.schema().clone();
        let mut total = 0;
        for row in g.take(3_000) {
            let object: serde_json::Map<String, serde_json::Value> = schema
                .fields()
                .iter()
                .zip(&row)
                .map(|(f, v)| (f.name.clone(), v.to_json()))
                .collect();
            let bytes = serde_json::Value::Object(object).to_string().len();
            assert!((250..=400).contains(&bytes), "{bytes}");
            total += bytes;
        }
        let mean = total / 3_000;
        assert!((300..=380).contains(&mean), "{mean}");
    }

    #[test]
    fn values_are_realistic_and_consistent() {
        let g = drifting(4);
        let schema = g.schema().clone();
        assert_eq!(g.label_field(), "is_fraud");
        assert_eq!(
            schema.field("card_id").and_then(|f| f.pii),
            Some(PiiAction::Hash)
        );
        assert_eq!(schema.len(), 16);
        assert!(schema.fields().iter().all(|f| f.required));
        let idx = |name: &str| schema.index_of(name).unwrap_or(usize::MAX);
        let mut ids = std::collections::HashSet::new();
        let mut previous_time = i64::MIN;
        for (t, row) in g.clone().take(20_000).enumerate() {
            let Value::Str(id) = &row[idx("transaction_id")] else {
                panic!("id")
            };
            assert!(ids.insert(id.clone()));
            let Value::Str(card) = &row[idx("card_id")] else {
                panic!("card")
            };
            assert_eq!(card.len(), 16);
            assert!(card.bytes().all(|b| b.is_ascii_digit()));
            assert_eq!(
                luhn_check_digit(&card[..15]),
                u32::from(card.as_bytes()[15] - b'0')
            );
            let Value::Timestamp(time) = row[idx("event_time")] else {
                panic!("time")
            };
            assert!(time > previous_time);
            previous_time = time;
            let Value::Str(merchant) = &row[idx("merchant_id")] else {
                panic!("merchant")
            };
            let Value::Str(category) = &row[idx("merchant_category")] else {
                panic!("category")
            };
            let number: usize = merchant[1..].parse().unwrap_or(usize::MAX);
            assert_eq!(
                CATEGORIES.get(number % CATEGORIES.len()),
                Some(&category.as_str())
            );
            let Value::Str(country) = &row[idx("country")] else {
                panic!("country")
            };
            let Value::Str(currency) = &row[idx("currency")] else {
                panic!("currency")
            };
            assert!(COUNTRIES.contains(&(country.as_str(), currency.as_str())));
            let Value::Str(channel) = &row[idx("channel")] else {
                panic!("channel")
            };
            if channel == "atm" {
                assert_eq!(category, "cash_withdrawal");
                assert_eq!(row[idx("card_present")], Value::Bool(true));
            }
            if channel == "online" {
                assert_eq!(row[idx("card_present")], Value::Bool(false));
            }
            if t == 0 {
                assert_eq!(
                    row[idx("event_time")].to_json(),
                    serde_json::Value::String("2026-01-05T00:00:00+00:00".into())
                );
            }
        }
        // A card keeps its holder's age and home wherever it appears.
        let c = Cards::new(77);
        assert_eq!(c.card(12_345), c.card(12_345));
        assert_ne!(c.card(12_345).number, c.card(12_346).number);
        assert!(c.card(0).opened_days_before <= 45 && c.card(1).opened_days_before > 45);
    }

    #[test]
    fn luhn_by_hand() {
        // 4111 1111 1111 1111 and 4012 8888 8888 1881 are the classic test numbers.
        assert_eq!(luhn_check_digit("411111111111111"), 1);
        assert_eq!(luhn_check_digit("401288888888188"), 1);
        assert_eq!(luhn_check_digit("453201511283036"), 6);
    }

    #[test]
    fn noise_raises_the_fraud_rate() {
        let mut cfg = config(GeneratorKind::Cards, 5);
        cfg.noise = 0.1;
        let fraud = Generator::new(&cfg)
            .take(20_000)
            .filter(|r| r.last() == Some(&Value::Int(1)))
            .count() as f64
            / 20_000.0;
        // 0.03 * 0.9 + 0.97 * 0.1
        assert!((fraud - 0.124).abs() < 0.015, "{fraud}");
    }
}
