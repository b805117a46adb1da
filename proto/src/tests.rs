//! Unit tests of the enums' words and the ids.

use super::*;

#[test]
fn every_named_value_round_trips_through_its_word() {
    for s in Stage::NAMED {
        assert_eq!(s.name().parse::<Stage>(), Ok(*s));
    }
    for k in TriggerKind::NAMED {
        assert_eq!(k.to_string().parse::<TriggerKind>(), Ok(*k));
    }
    for c in ModelChange::NAMED {
        assert_eq!(c.name().parse::<ModelChange>(), Ok(*c));
    }
    for s in ModelStage::NAMED {
        assert_eq!(s.name().parse::<ModelStage>(), Ok(*s));
    }
    for c in Concurrency::NAMED {
        assert_eq!(c.name().parse::<Concurrency>(), Ok(*c));
    }
}

#[test]
fn an_unknown_word_is_refused_with_the_known_ones() {
    let e = "trian".parse::<Stage>().unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown stage \"trian\"; use one of validate, train, gate, promote, integration, approval, production"
    );
    assert!("unspecified".parse::<TriggerKind>().is_err());
}

#[test]
fn ids_are_checked_where_they_are_parsed() {
    let run = RunId::new();
    assert_eq!(run.as_str().parse::<RunId>(), Ok(run));
    assert!("a.b".parse::<RunId>().is_err());
    assert!("".parse::<RunId>().is_err());
    assert!("drift-01J_x".parse::<TriggerId>().is_ok());
    assert!("drift-01J_x".parse::<RunId>().is_err());
    assert!("x".repeat(65).parse::<TriggerId>().is_err());
}

#[test]
fn comparisons_hold_on_their_side_only() {
    assert!(Comparison::AtLeast.holds(0.8, 0.8));
    assert!(!Comparison::AtLeast.holds(f64::NAN, 0.8));
    assert!(Comparison::AtMost.holds(1.0, 2.0));
    assert!(!Comparison::AtMost.holds(3.0, 2.0));
}
