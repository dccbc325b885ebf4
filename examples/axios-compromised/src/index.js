// Fetches invoices from the billing API. Nothing here is malicious; the fixture's point is its lockfile
// and install tree, which record axios@1.14.1 and its phantom dependency plain-crypto-js.
const axios = require("axios");

async function main() {
  const res = await axios.get("https://billing.example.invalid/invoices");
  console.log(res.data.length, "invoices");
}

main().catch((err) => console.error(err.message));
