/** HTML of the dashboard's two pages: the app shell (its script fills it in) and the sign-in form. */

const escape = (text: string): string => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

const head = (title: string): string => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>${escape(title)}</title>
<link rel="stylesheet" href="assets/app.css">
</head>`

/** The app shell: navigation, the filter bar and an empty main area; `assets/app.js` renders the views. */
export function appPage(title: string, signOut: boolean): string {
  return `${head(title)}
<body>
<a class="skip" href="#main">Skip to content</a>
<header>
  <h1>${escape(title)}</h1>
  <nav aria-label="Views">
    <a href="#overview">Overview</a>
    <a href="#traffic">Routes &amp; APIs</a>
    <a href="#llm">LLM spend</a>
    <a href="#reliability">Alerts, probes &amp; SLOs</a>
    <a href="#health">Health</a>
  </nav>
  ${signOut ? '<form method="post" action="signout" class="signout"><button type="submit">Sign out</button></form>' : ''}
</header>
<form id="filters" class="filters" aria-label="Filters">
  <label>Range <select name="range">
    <option value="1h">Last hour</option><option value="24h" selected>Last 24 hours</option>
    <option value="7d">Last 7 days</option><option value="30d">Last 30 days</option><option value="custom">Custom…</option>
  </select></label>
  <label class="custom">From <input name="from" type="datetime-local"></label>
  <label class="custom">To <input name="to" type="datetime-local"></label>
  <label>Times <select name="tz"><option value="local">Local</option><option value="utc">UTC</option></select></label>
  <label>Service <select name="service"><option value="">All</option></select></label>
  <label>Tenant <select name="tenant"><option value="">All</option></select></label>
  <span id="drill"></span>
  <span id="live" role="status" aria-live="polite"></span>
</form>
<main id="main" tabindex="-1"></main>
<script src="assets/app.js" defer></script>
</body>
</html>
`
}

/** The sign-in form (served with 401), with a message after a wrong token. */
export function signInPage(title: string, message: string | undefined): string {
  return `${head(title)}
<body class="signin">
<main id="main">
  <h1>${escape(title)}</h1>
  <form method="post" action="signin">
    <label for="token">Dashboard token</label>
    <input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
    ${message ? `<p class="error" role="alert">${escape(message)}</p>` : ''}
    <button type="submit">Sign in</button>
  </form>
</main>
</body>
</html>
`
}

/** The page shown when the host's own auth check said no (the host signs its users in, not the dashboard). */
export function deniedPage(title: string): string {
  return `${head(title)}
<body class="signin"><main id="main"><h1>${escape(title)}</h1><p role="alert">401 Unauthorized: sign in to the application first.</p></main></body>
</html>
`
}
