// Fetch one API endpoint as JSON; an error body's message becomes the Error's message.
export async function getJSON(path, params = {}) {
  const query = new URLSearchParams(params).toString();
  const response = await fetch(query ? `${path}?${query}` : path, { headers: { Accept: "application/json" } });
  const body = await response.json();
  if (!response.ok) {
    const error = body.error || {};
    throw new Error(error.parameter ? `${error.parameter}: ${error.message}` : (error.message || response.statusText));
  }
  return body;
}
