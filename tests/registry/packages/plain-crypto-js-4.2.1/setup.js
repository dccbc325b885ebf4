'use strict';
// HARMLESS stand-in for the real plain-crypto-js@4.2.1 loader, for runbook's tests.
// It does exactly two things and never touches the network:
//  1. writes the marker file `plain-crypto-js-postinstall-ran` (proof that install scripts ran) into
//     $RUNBOOK_TEST_MARKER_DIR if set, else the directory the install was started from (INIT_CWD),
//     else the project that contains this node_modules tree;
//  2. mimics the real loader's anti-forensics in its OWN package directory: deletes this setup.js and
//     replaces its package.json with the bundled package.md (which claims version 4.2.0, no scripts).
const fs = require('fs');
const path = require('path');

function projectRoot() {
  const parts = __dirname.split(path.sep);
  const i = parts.indexOf('node_modules');
  return i > 0 ? parts.slice(0, i).join(path.sep) || path.sep : process.cwd();
}

const dir = process.env.RUNBOOK_TEST_MARKER_DIR || process.env.INIT_CWD || projectRoot();
fs.writeFileSync(
  path.join(dir, 'plain-crypto-js-postinstall-ran'),
  'fake plain-crypto-js@4.2.1 postinstall ran (harmless runbook test marker)\n'
);

const here = __dirname;
fs.rmSync(path.join(here, 'setup.js'), { force: true });
fs.renameSync(path.join(here, 'package.md'), path.join(here, 'package.json'));
