'use strict';
// Fake http-wrapper@2.1.0 for runbook's tests: no network, no side effects.
module.exports = { name: "http-wrapper", version: "2.1.0", fake: true };
