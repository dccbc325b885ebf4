'use strict';
// Fake axios-retry@1.14.1 for runbook's tests: no network, no side effects.
module.exports = { name: "axios-retry", version: "1.14.1", fake: true };
