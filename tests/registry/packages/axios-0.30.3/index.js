'use strict';
// Fake axios@0.30.3 for runbook's tests: no network, no side effects.
function request() {
  return Promise.reject(new Error('fake axios: no network in tests'));
}
module.exports = { name: 'axios', version: "0.30.3", fake: true, request, get: request };
