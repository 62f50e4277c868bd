//! Pure policies: functions of their inputs and `now`, property-tested.
