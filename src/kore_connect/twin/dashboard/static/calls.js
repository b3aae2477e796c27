// Live updates: the rows again from the server every second, while this page is open.
const rows = document.getElementById("rows");
const query = new URLSearchParams(location.search).get("q") || "";
setInterval(async () => {
  const answer = await fetch("/fragments/calls?q=" + encodeURIComponent(query));
  if (answer.ok) { const html = await answer.text(); if (html !== rows.innerHTML) rows.innerHTML = html; }
}, 1000);
