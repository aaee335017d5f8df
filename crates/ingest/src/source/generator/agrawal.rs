//! Agrawal's loan applicants (Agrawal, Imielinski and Swami, "Database Mining: A
//! Performance Perspective", IEEE TKDE 5(6), 1993), with the paper's ten classification
//! functions. Concept `k` uses function `k mod 10` (function 1 of the paper is
//! concept 0).
//!
//! Features, as published:
//!
//! | field | distribution |
//! |---|---|
//! | `salary` | uniform 20 000 – 150 000 |
//! | `commission` | 0 if salary ≥ 75 000, else uniform 10 000 – 75 000 |
//! | `age` | uniform integer 20 – 80 |
//! | `elevel` | uniform integer 0 – 4 (education level) |
//! | `car` | uniform integer 1 – 20 (make of the car) |
//! | `zipcode` | uniform integer 0 – 8 |
//! | `hvalue` | uniform 0.5·k·100 000 – 1.5·k·100 000 with k = 9 − zipcode |
//! | `hyears` | uniform integer 1 – 30 (years the house is owned) |
//! | `loan` | uniform 0 – 500 000 |
//!
//! The label is 0 for the paper's "group A" and 1 otherwise, as in MOA. Functions 8 and
//! 10 put almost every applicant in group A (label 1 is rare: about 2% and well under
//! 1%); that follows from the published definitions, and the classes are not rebalanced.

use crate::Row;
use freshet_core::{Field, FieldType, Schema, Value};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Number of classification functions.
pub(super) const FUNCTIONS: usize = 10;

/// One loan applicant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Applicant {
    pub salary: f64,
    pub commission: f64,
    pub age: i64,
    pub elevel: i64,
    pub car: i64,
    pub zipcode: i64,
    pub hvalue: f64,
    pub hyears: i64,
    pub loan: f64,
}

/// The nine features, then `label`; all required, with the published ranges.
pub(super) fn schema() -> Schema {
    let float = |name: &str, min: f64, max: f64| {
        Field::new(name, FieldType::Float)
            .required()
            .range(Some(min), Some(max))
    };
    let int = |name: &str, min: f64, max: f64| {
        Field::new(name, FieldType::Int)
            .required()
            .range(Some(min), Some(max))
    };
    Schema::new(vec![
        float("salary", 20_000.0, 150_000.0),
        float("commission", 0.0, 75_000.0),
        int("age", 20.0, 80.0),
        int("elevel", 0.0, 4.0),
        int("car", 1.0, 20.0),
        int("zipcode", 0.0, 8.0),
        float("hvalue", 50_000.0, 1_350_000.0),
        int("hyears", 1.0, 30.0),
        float("loan", 0.0, 500_000.0),
        int("label", 0.0, 1.0),
    ])
}

/// Draw an applicant from the published distributions.
pub(super) fn sample(rng: &mut ChaCha8Rng) -> Applicant {
    let salary = 20_000.0 + 130_000.0 * rng.random::<f64>();
    let commission_draw = 10_000.0 + 65_000.0 * rng.random::<f64>();
    let commission = if salary >= 75_000.0 {
        0.0
    } else {
        commission_draw
    };
    let age = rng.random_range(20..=80);
    let elevel = rng.random_range(0..=4);
    let car = rng.random_range(1..=20);
    let zipcode: i64 = rng.random_range(0..=8);
    let hvalue = (9 - zipcode) as f64 * 100_000.0 * (0.5 + rng.random::<f64>());
    let hyears = rng.random_range(1..=30);
    let loan = 500_000.0 * rng.random::<f64>();
    Applicant {
        salary,
        commission,
        age,
        elevel,
        car,
        zipcode,
        hvalue,
        hyears,
        loan,
    }
}

/// Whether `x` lies in the inclusive range `[lo, hi]`.
fn within(x: f64, lo: f64, hi: f64) -> bool {
    (lo..=hi).contains(&x)
}

/// Whether the applicant is in group A under function `function` (0-based: 0 is the
/// paper's function 1; taken modulo 10).
pub(super) fn group_a(function: usize, a: &Applicant) -> bool {
    // Salary bands of the three age groups, used by functions 2, 4, 5 and 6.
    let band = |age: i64, x: f64| match age {
        ..40 => within(x, 50_000.0, 100_000.0),
        40..60 => within(x, 75_000.0, 125_000.0),
        _ => within(x, 25_000.0, 75_000.0),
    };
    let total = a.salary + a.commission;
    match function % FUNCTIONS {
        0 => a.age < 40 || a.age >= 60,
        1 => band(a.age, a.salary),
        2 => match a.age {
            ..40 => matches!(a.elevel, 0 | 1),
            40..60 => matches!(a.elevel, 1..=3),
            _ => matches!(a.elevel, 2..=4),
        },
        3 => match a.age {
            ..40 if matches!(a.elevel, 0 | 1) => within(a.salary, 25_000.0, 75_000.0),
            ..40 => within(a.salary, 50_000.0, 100_000.0),
            40..60 if matches!(a.elevel, 1..=3) => within(a.salary, 50_000.0, 100_000.0),
            40..60 => within(a.salary, 75_000.0, 125_000.0),
            _ if matches!(a.elevel, 2..=4) => within(a.salary, 50_000.0, 100_000.0),
            _ => within(a.salary, 25_000.0, 75_000.0),
        },
        4 => match a.age {
            ..40 if band(a.age, a.salary) => within(a.loan, 100_000.0, 300_000.0),
            ..40 => within(a.loan, 200_000.0, 400_000.0),
            40..60 if band(a.age, a.salary) => within(a.loan, 200_000.0, 400_000.0),
            40..60 => within(a.loan, 300_000.0, 500_000.0),
            _ if band(a.age, a.salary) => within(a.loan, 300_000.0, 500_000.0),
            _ => within(a.loan, 100_000.0, 300_000.0),
        },
        5 => band(a.age, total),
        6 => 0.67 * total - 0.2 * a.loan - 20_000.0 > 0.0,
        7 => 0.67 * total - 5_000.0 * a.elevel as f64 - 20_000.0 > 0.0,
        8 => 0.67 * total - 5_000.0 * a.elevel as f64 - 0.2 * a.loan - 10_000.0 > 0.0,
        _ => {
            let equity = 0.1 * a.hvalue * (a.hyears - 20).max(0) as f64;
            0.67 * total - 5_000.0 * a.elevel as f64 + 0.2 * equity - 10_000.0 > 0.0
        }
    }
}

/// The label of `a` under concept `concept`: 0 for group A, 1 otherwise.
pub(super) fn label(a: &Applicant, concept: usize) -> i64 {
    i64::from(!group_a(concept % FUNCTIONS, a))
}

/// One event of concept `concept`.
pub(super) fn row(rng: &mut ChaCha8Rng, concept: usize) -> Row {
    let a = sample(rng);
    vec![
        Value::Float(a.salary),
        Value::Float(a.commission),
        Value::Int(a.age),
        Value::Int(a.elevel),
        Value::Int(a.car),
        Value::Int(a.zipcode),
        Value::Float(a.hvalue),
        Value::Int(a.hyears),
        Value::Float(a.loan),
        Value::Int(label(&a, concept)),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::Generator;
    use super::super::tests::config;
    use super::*;
    use freshet_core::config::{DriftPoint, GeneratorKind};

    fn applicant() -> Applicant {
        Applicant {
            salary: 60_000.0,
            commission: 20_000.0,
            age: 30,
            elevel: 1,
            car: 5,
            zipcode: 2,
            hvalue: 500_000.0,
            hyears: 10,
            loan: 150_000.0,
        }
    }

    fn with(f: impl FnOnce(&mut Applicant)) -> Applicant {
        let mut a = applicant();
        f(&mut a);
        a
    }

    #[test]
    fn function_1_age() {
        assert!(group_a(0, &with(|a| a.age = 39)));
        assert!(!group_a(0, &with(|a| a.age = 40)));
        assert!(!group_a(0, &with(|a| a.age = 59)));
        assert!(group_a(0, &with(|a| a.age = 60)));
    }

    #[test]
    fn function_2_age_and_salary() {
        assert!(group_a(1, &applicant())); // 30, 60k in 50–100k
        assert!(!group_a(1, &with(|a| a.salary = 120_000.0)));
        assert!(group_a(1, &with(|a| (a.age, a.salary) = (45, 120_000.0))));
        assert!(!group_a(1, &with(|a| (a.age, a.salary) = (45, 60_000.0))));
        assert!(group_a(1, &with(|a| (a.age, a.salary) = (70, 25_000.0))));
        assert!(!group_a(1, &with(|a| (a.age, a.salary) = (70, 80_000.0))));
    }

    #[test]
    fn function_3_age_and_elevel() {
        assert!(group_a(2, &applicant()));
        assert!(!group_a(2, &with(|a| a.elevel = 2)));
        assert!(group_a(2, &with(|a| (a.age, a.elevel) = (50, 3))));
        assert!(!group_a(2, &with(|a| (a.age, a.elevel) = (50, 0))));
        assert!(group_a(2, &with(|a| (a.age, a.elevel) = (65, 4))));
        assert!(!group_a(2, &with(|a| (a.age, a.elevel) = (65, 1))));
    }

    #[test]
    fn function_4_age_elevel_salary() {
        assert!(group_a(3, &applicant())); // young, elevel 1: 25–75k, and 60k is in
        assert!(!group_a(3, &with(|a| a.salary = 80_000.0)));
        assert!(group_a(3, &with(|a| a.salary = 30_000.0)));
        assert!(!group_a(3, &with(|a| (a.elevel, a.salary) = (3, 30_000.0))));
        assert!(group_a(3, &with(|a| (a.elevel, a.salary) = (3, 90_000.0))));
        assert!(group_a(
            3,
            &with(|a| (a.age, a.elevel, a.salary) = (50, 0, 110_000.0))
        ));
        assert!(!group_a(
            3,
            &with(|a| (a.age, a.elevel, a.salary) = (50, 2, 110_000.0))
        ));
        assert!(group_a(
            3,
            &with(|a| (a.age, a.elevel, a.salary) = (70, 1, 30_000.0))
        ));
        assert!(!group_a(
            3,
            &with(|a| (a.age, a.elevel, a.salary) = (70, 3, 30_000.0))
        ));
    }

    #[test]
    fn function_5_age_salary_loan() {
        assert!(group_a(4, &applicant())); // young, salary in band, loan 150k in 100–300k
        assert!(!group_a(4, &with(|a| a.loan = 350_000.0)));
        assert!(group_a(
            4,
            &with(|a| (a.salary, a.loan) = (120_000.0, 350_000.0))
        ));
        assert!(group_a(
            4,
            &with(|a| (a.age, a.salary, a.loan) = (45, 80_000.0, 250_000.0))
        ));
        assert!(group_a(
            4,
            &with(|a| (a.age, a.salary, a.loan) = (45, 30_000.0, 450_000.0))
        ));
        assert!(!group_a(
            4,
            &with(|a| (a.age, a.salary, a.loan) = (45, 30_000.0, 250_000.0))
        ));
        assert!(group_a(
            4,
            &with(|a| (a.age, a.salary, a.loan) = (70, 40_000.0, 400_000.0))
        ));
        assert!(group_a(
            4,
            &with(|a| (a.age, a.salary, a.loan) = (70, 90_000.0, 200_000.0))
        ));
        assert!(!group_a(
            4,
            &with(|a| (a.age, a.salary, a.loan) = (70, 90_000.0, 400_000.0))
        ));
    }

    #[test]
    fn function_6_total_salary() {
        assert!(group_a(5, &applicant())); // young, 80k total
        assert!(!group_a(5, &with(|a| a.commission = 45_000.0))); // 105k
        assert!(group_a(
            5,
            &with(|a| (a.age, a.commission) = (45, 45_000.0))
        ));
    }

    #[test]
    fn functions_7_to_10_disposable_income() {
        // 0.67 * 80k = 53.6k.
        assert!(group_a(6, &applicant())); // 53.6k - 30k - 20k = 3.6k > 0
        assert!(!group_a(6, &with(|a| a.loan = 200_000.0))); // -6.4k
        assert!(group_a(7, &applicant())); // 53.6k - 5k - 20k > 0
        assert!(!group_a(
            7,
            &with(|a| (a.salary, a.commission) = (25_000.0, 10_000.0))
        )); // 23.45k - 25k
        assert!(group_a(8, &applicant())); // 53.6k - 5k - 30k - 10k = 8.6k
        assert!(!group_a(8, &with(|a| a.loan = 200_000.0))); // -1.4k
        // Function 10: no equity before 20 years.
        let poor = with(|a| (a.salary, a.commission, a.elevel) = (20_000.0, 10_000.0, 4));
        assert!(!group_a(9, &poor)); // 20.1k - 20k - 10k < 0
        // 25 years in a 500k house: equity 0.1 * 500k * 5 = 250k, + 50k.
        assert!(group_a(9, &Applicant { hyears: 25, ..poor }));
        // Functions wrap around: concept 10 is function 1 again.
        assert_eq!(label(&with(|a| a.age = 45), 10), 1);
        assert_eq!(label(&applicant(), 10), 0);
    }

    #[test]
    fn features_follow_the_published_distributions() {
        let mut cfg = config(GeneratorKind::Agrawal, 99);
        cfg.drift = (1..10)
            .map(|k| DriftPoint {
                at: k * 1_000,
                width: 0,
            })
            .collect();
        let g = Generator::new(&cfg);
        let mut ones = [0usize; 10];
        let mut zip_seen = [false; 9];
        for (t, row) in g.take(10_000).enumerate() {
            let [
                Value::Float(salary),
                Value::Float(commission),
                Value::Int(age),
                Value::Int(elevel),
                Value::Int(car),
                Value::Int(zipcode),
                Value::Float(hvalue),
                Value::Int(hyears),
                Value::Float(loan),
                Value::Int(l),
            ] = row.as_slice()
            else {
                panic!("unexpected row {row:?}")
            };
            let a = Applicant {
                salary: *salary,
                commission: *commission,
                age: *age,
                elevel: *elevel,
                car: *car,
                zipcode: *zipcode,
                hvalue: *hvalue,
                hyears: *hyears,
                loan: *loan,
            };
            if a.salary >= 75_000.0 {
                assert_eq!(a.commission, 0.0);
            } else {
                assert!((10_000.0..=75_000.0).contains(&a.commission));
            }
            let k = (9 - a.zipcode) as f64 * 100_000.0;
            assert!(a.hvalue >= 0.5 * k && a.hvalue <= 1.5 * k);
            zip_seen[a.zipcode as usize] = true;
            assert_eq!(*l, label(&a, t / 1_000));
            ones[t / 1_000] += usize::from(*l == 1);
        }
        assert!(zip_seen.iter().all(|s| *s));
        // Function 1: group A (label 0) is ages 20–39 and 60–80, 41 of 61 ages.
        assert!(
            (ones[0] as f64 / 1_000.0 - 20.0 / 61.0).abs() < 0.06,
            "{}",
            ones[0]
        );
        // Functions 1 to 9 produce both labels in quantity; function 10 (like 8) puts
        // nearly everyone in group A, as the paper's definition implies.
        assert!(ones[..9].iter().all(|&n| n > 10 && n < 990), "{ones:?}");
        assert!(ones[7] < 100 && ones[9] < 50, "{ones:?}");
    }
}
