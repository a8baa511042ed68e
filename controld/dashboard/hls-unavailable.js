// Served in place of hls.js when controld was built before `npm ci` in controld/dashboard
// (controld/build.rs chooses). The player shows this reason where the preview would be.
window.hlsUnavailableReason = "Preview unavailable: controld was built without hls.js (run scripts/setup-dashboard.sh, then rebuild controld).";
