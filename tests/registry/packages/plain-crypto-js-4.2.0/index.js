'use strict';
// Fake plain-crypto-js@4.2.0 for runbook's tests: no network, no side effects.
module.exports = { name: "plain-crypto-js", version: "4.2.0", fake: true };
