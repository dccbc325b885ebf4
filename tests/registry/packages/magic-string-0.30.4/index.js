'use strict';
// Fake magic-string@0.30.4 for runbook's tests: no network, no side effects.
module.exports = { name: "magic-string", version: "0.30.4", fake: true };
