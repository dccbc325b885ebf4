'use strict';
// Fake legacy-client@1.0.0 for runbook's tests: no network, no side effects.
module.exports = { name: "legacy-client", version: "1.0.0", fake: true };
