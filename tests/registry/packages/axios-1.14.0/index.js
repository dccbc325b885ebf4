'use strict';
// Fake axios@1.14.0 for runbook's tests: no network, no side effects.
function request() {
  return Promise.reject(new Error('fake axios: no network in tests'));
}
module.exports = { name: 'axios', version: "1.14.0", fake: true, request, get: request };
