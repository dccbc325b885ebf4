'use strict';
// Fake axios@1.14.1 for runbook's tests: no network, no side effects.
// Like the real compromised release it declares plain-crypto-js but never imports it.
function request() {
  return Promise.reject(new Error('fake axios: no network in tests'));
}
module.exports = { name: 'axios', version: "1.14.1", fake: true, request, get: request };
