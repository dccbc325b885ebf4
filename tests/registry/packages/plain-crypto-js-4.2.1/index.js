'use strict';
// Fake plain-crypto-js for runbook's tests: no network, no side effects.
module.exports = { name: 'plain-crypto-js', fake: true };
