// The Vigil operator console. Every action is a bus operation, sent through the console's
// /api/request as the logged-in user; live tiles play a link's WebSocket (fragmented MP4) from
// the relay. Text from the server is only ever put on the page with textContent, never as HTML.
'use strict';

const state = {
  session: null,
  incidents: [],
  selected: null,      // incident id
  snapshot: null,
  justifications: {},  // incident id -> {reason, text}
  mapMode: null,       // 'open' | 'redraw' | 'head' | 'tail' | 'area' | null
  tiles: [],           // {camera, element, close}
  map: null,
  layers: {},
};

class ApiError extends Error {
  constructor(error) { super(error.message || error.code); this.code = error.code; }
}

function element(tag, text, className) {
  const made = document.createElement(tag);
  if (text !== undefined && text !== null) made.textContent = String(text);
  if (className) made.className = className;
  return made;
}

function say(text) { document.getElementById('status').textContent = text || ''; }

// One bus operation as the logged-in user; its result, or an ApiError with the stable code.
async function api(op, body) {
  const response = await fetch('/api/request', {
    method: 'POST', credentials: 'same-origin',
    headers: {'Content-Type': 'application/json', 'X-Vigil-CSRF': state.session.csrf},
    body: JSON.stringify({op, body: body || {}}),
  });
  const reply = await response.json().catch(() => ({ok: false, error: {code: 'http_' + response.status}}));
  if (response.status === 401) { showLogin(reply.error && reply.error.message); }
  if (!response.ok || reply.ok === false) throw new ApiError(reply.error || {code: 'http_' + response.status});
  return reply.result;
}

// MARK: Login

async function boot() {
  const response = await fetch('/api/session', {credentials: 'same-origin'});
  if (response.ok) { state.session = await response.json(); start(); } else { showLogin(); }
}

function showLogin(message) {
  document.getElementById('console').hidden = true;
  document.getElementById('logout').hidden = true;
  document.getElementById('login').hidden = false;
  document.getElementById('login-error').textContent = message || '';
}

document.getElementById('login-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const code = document.getElementById('login-code').value.trim();
  const response = await fetch('/api/login', {
    method: 'POST', credentials: 'same-origin', headers: {'Content-Type': 'application/json'}, body: JSON.stringify({code}),
  });
  const reply = await response.json().catch(() => ({}));
  if (!response.ok) { showLogin((reply.error && reply.error.message) || 'login refused'); return; }
  state.session = reply;
  start();
});

document.getElementById('logout').addEventListener('click', async () => {
  await fetch('/api/logout', {method: 'POST', credentials: 'same-origin', headers: {'Content-Type': 'application/json'}, body: '{}'});
  location.reload();
});

function start() {
  const session = state.session;
  document.getElementById('login').hidden = true;
  document.getElementById('console').hidden = false;
  document.getElementById('logout').hidden = false;
  document.getElementById('who').textContent =
    `${session.name} (${session.user}, ${session.agency}) until ${new Date(session.ends_at).toLocaleString()}`;
  document.getElementById('audit').hidden = !session.roles.includes('auditor');
  refreshGrants();
  // Logged in again after a session ended: follow again; the map, the wall and the refreshes are there already.
  if (!state.source || state.source.readyState === EventSource.CLOSED) followChannels();
  if (state.started) return;
  state.started = true;
  buildWall();
  startMap().catch((error) => say(`map: ${error.message}`));
  refreshIncidents();
  // Every 2 s while the stream is down; while following, the list and the incident once a
  // minute as well, in case a change was lost (not who is watching: each reading of it is an
  // audit entry, and the stream tells of each view that starts or stops).
  setInterval(() => { if (!state.following) { refreshIncidents(); refreshSelected(); } }, 2000);
  setInterval(() => { if (state.following) { refreshIncidents(); refreshSelected({watchers: false}); refreshGrants(); } }, 60000);
}

// MARK: Following the agency's channels

// The server tells the page which of its agency's incidents changed (channel, seq and type,
// not what changed): the page reads the change as its user, at once.
function followChannels() {
  const source = new EventSource('/api/events');
  state.source = source;
  source.addEventListener('open', () => {
    showFollowing(true);
    // Changes made while the stream was down were not told: read where things stand.
    refreshIncidents();
    refreshSelected();
  });
  source.addEventListener('error', () => showFollowing(false));
  source.addEventListener('change', (event) => {
    const change = JSON.parse(event.data);
    document.body.dataset.lastChange = `${change.channel} ${change.type}`;
    const selected = change.channel === `incident/${state.selected}`;
    if (change.type.startsWith('view.')) {
      document.body.dataset.viewChanges = String(Number(document.body.dataset.viewChanges || 0) + 1);
      if (selected) refreshWatchers(state.selected);
    } else refreshSoon(selected);
    // A grant given or taken back changes what the agencies see (`incident.access-changed`).
    if (change.type.includes('access')) refreshGrants();
  });
  source.addEventListener('ended', (event) => {
    source.close();
    showFollowing(false);
    const {reason} = JSON.parse(event.data);
    if (reason === 'session_required') showLogin('Your session ended'); else say('Following stopped: this session follows in another tab; refreshing every 2 s');
  });
}

function showFollowing(following) {
  state.following = following;
  document.body.dataset.following = following ? 'yes' : 'no';
  const live = document.getElementById('live');
  live.textContent = following ? '● live' : '○ catching up every 2 s';
  live.classList.toggle('on', following);
}

// Several changes at once (an incident opened: its channel and the list's) make one refresh.
function refreshSoon(selected) {
  state.selectedChanged = state.selectedChanged || selected;
  if (state.refreshTimer) return;
  state.refreshTimer = setTimeout(async () => {
    const selectedToo = state.selectedChanged;
    state.refreshTimer = null;
    state.selectedChanged = false;
    await refreshIncidents();
    if (selectedToo) await refreshSelected({watchers: false});
  }, 50);
}

// MARK: The map

const sectionColours = {ahead: '#ffb74d', occupied: '#e57373', behind: '#90caf9', side_street: '#ce93d8', arrival: '#a5d6a7', fallback: '#bdbdbd'};
const basemapStyles = {
  area: {color: '#4a6072', weight: 1, fill: false},
  road: {color: '#5d5d5d', weight: 1},
  line: {color: '#c0392b', weight: 2, opacity: 0.7},
  station: {radius: 3, color: '#c0392b', weight: 1, fillOpacity: 0.8},
};

async function startMap() {
  const basemap = await (await fetch('/basemap')).json();
  const canvas = L.canvas({padding: 0.2});
  const map = L.map('map', {preferCanvas: true, renderer: canvas}).setView([basemap.view[0], basemap.view[1]], basemap.view[2]);
  state.map = map;
  map.attributionControl.setPrefix('Leaflet');
  for (const attribution of basemap.attributions) map.attributionControl.addAttribution(escapeHTML(attribution));
  const overlays = {};
  for (const layer of basemap.layers) {
    const data = await (await fetch(`/basemap/${encodeURIComponent(layer.name)}.geojson`)).json();
    const style = basemapStyles[layer.style] || basemapStyles.area;
    overlays[layer.name] = L.geoJSON(data, {
      renderer: canvas, interactive: false, style: () => style,
      pointToLayer: (_, at) => L.circleMarker(at, Object.assign({renderer: canvas, interactive: false}, basemapStyles.station)),
    }).addTo(map);
  }
  const cameras = await api('cameras.select', {type: 'radius', at: {lat: basemap.view[0], lon: basemap.view[1]}, meters: 30000});
  const markers = cameras.cameras.filter((camera) => camera.position).map((camera) =>
    L.circleMarker([camera.position.lat, camera.position.lon], {renderer: canvas, radius: 2, color: '#4fc3f7', weight: 0, fillOpacity: 0.7})
      .bindTooltip(textNode(`${camera.id} (${camera.owner})`)));
  overlays.cameras = L.layerGroup(markers).addTo(map);
  state.layers.incidents = L.layerGroup().addTo(map);
  state.layers.incident = L.layerGroup().addTo(map);
  L.control.layers(null, overlays, {collapsed: true}).addTo(map);
  document.body.dataset.cameras = String(markers.length);
  // Since the page was asked for: the basemap, the cameras and the session included.
  document.body.dataset.mapReadyMs = String(Math.round(performance.now()));
  map.on('click', onMapClick);
  drawSelected();
}

function textNode(text) { const span = document.createElement('span'); span.textContent = text; return span; }

function escapeHTML(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]));
}

function onMapClick(event) {
  const at = {lat: Number(event.latlng.lat.toFixed(6)), lon: Number(event.latlng.lng.toFixed(6))};
  if (state.mapMode === 'area') {
    state.area.points.push([at.lat, at.lon]);
    state.area.line.setLatLngs(state.area.points);
    document.getElementById('finish-area').hidden = state.area.points.length < (state.area.purpose === 'route' ? 2 : 3);
    return;
  }
  const mode = state.mapMode;
  state.mapMode = null;
  say('');
  if (mode === 'open') {
    state.pendingOpen = {at};
    document.getElementById('new-incident-where').textContent = `At ${at.lat}, ${at.lon}`;
    showOpenDialog();
  } else if (mode === 'redraw' && state.snapshot) {
    act(() => api('incident.redraw', {incident: state.selected, at, radius_meters: state.snapshot.incident.radius_meters}), 'redrawn');
  } else if (mode === 'head' && state.snapshot) {
    const march = state.snapshot.incident.march;
    act(() => api('incident.move', {incident: state.selected, head: at, tail: {along_meters: march.tail_meters}}), 'head moved');
  } else if (mode === 'tail' && state.snapshot) {
    const march = state.snapshot.incident.march;
    act(() => api('incident.move', {incident: state.selected, head: {along_meters: march.head_meters}, tail: at}), 'tail moved');
  }
}

async function act(action, done) {
  try { await action(); say(done); await refreshIncidents(); await refreshSelected({watchers: false}); } catch (error) { say(`${error.code}: ${error.message}`); }
}

document.getElementById('new-incident').addEventListener('click', () => { state.mapMode = 'open'; say('Click the map where the incident is'); });

// A shape drawn on the map, point by point: a perimeter for a new incident ('open') or to redraw
// the selected one ('redraw'), or a march's declared route ('route').
function startArea(purpose, splitFrom = null) {
  if (state.area) state.area.line.remove();
  // A route drawn for a group that split off a march: the new march is its child.
  state.splitFrom = splitFrom;
  state.mapMode = 'area';
  const style = {color: '#ff7043', weight: 2, dashArray: '4', fillOpacity: 0.05};
  state.area = {purpose, points: [], line: (purpose === 'route' ? L.polyline([], style) : L.polygon([], style)).addTo(state.map)};
  document.getElementById('finish-area').textContent = purpose === 'route' ? 'Finish the route' : 'Finish the area';
  say(purpose === 'route' ? 'Click the declared route on the map, start to end, then Finish the route'
    : 'Click the perimeter\'s corners on the map, then Finish the area');
}
document.getElementById('new-area').addEventListener('click', () => startArea('open'));
document.getElementById('new-march').addEventListener('click', () => startArea('route'));
document.getElementById('redraw-area').addEventListener('click', () => { if (state.selected) startArea('redraw'); });
document.getElementById('split-off').addEventListener('click', () => {
  if (state.snapshot && state.snapshot.incident.march) startArea('route', state.snapshot.incident);
});
document.getElementById('finish-area').addEventListener('click', () => {
  const {purpose, points, line} = state.area;
  line.remove();
  state.area = null;
  state.mapMode = null;
  document.getElementById('finish-area').hidden = true;
  say('');
  const ring = points.map(([lat, lon]) => [lon, lat]);
  if (purpose === 'redraw') {
    act(() => api('incident.redraw', {incident: state.selected, area: {type: 'Polygon', coordinates: [[...ring, ring[0]]]}}), 'redrawn');
    return;
  }
  if (purpose === 'route') {
    const parent = state.splitFrom;
    state.splitFrom = null;
    state.pendingOpen = {route: {type: 'LineString', coordinates: ring}, parent: parent && parent.id};
    document.getElementById('new-incident-where').textContent = `A route of ${points.length} points, ${Math.round(routeLength(points))} m`
      + (parent ? `: a group split off #${parent.id}` : '');
    document.getElementById('new-kind').value = parent ? parent.kind : 'demonstration';
    // A group that split off keeps the march's window; a new march starts from the defaults.
    fillWindow(parent && parent.march && parent.march.settings);
  } else {
    state.pendingOpen = {area: {type: 'Polygon', coordinates: [[...ring, ring[0]]]}};
    document.getElementById('new-incident-where').textContent = `A perimeter of ${points.length} corners`;
  }
  showOpenDialog();
});

// The new-march dialog's fields for the window's settings besides the corridor, and the
// setting each sets.
const windowFields = [['new-ahead', 'ahead_meters'], ['new-ahead-seconds', 'ahead_seconds'], ['new-behind', 'behind_meters'],
  ['new-side-streets', 'side_street_radius_meters'], ['new-arrival', 'arrival_radius_meters'], ['new-limit', 'limit']];

// Fills the new-march dialog with a window's settings, or empties it (the defaults) for none.
function fillWindow(settings) {
  document.getElementById('new-width').value = settings ? settings.corridor_width_meters : 60;
  for (const [id, setting] of windowFields) document.getElementById(id).value = settings && settings[setting] != null ? settings[setting] : '';
}

// A march window's settings, as the incident's facts show them.
function windowText(settings) {
  return `; window ${Math.round(settings.ahead_meters)} m ahead` + (settings.ahead_seconds ? ` (or ${Math.round(settings.ahead_seconds)} s at its speed)` : '')
    + `, ${Math.round(settings.behind_meters)} m behind, ${Math.round(settings.corridor_width_meters)} m corridor`
    + (settings.limit ? `, at most ${settings.limit} cameras` : '');
}

// The new-incident dialog, with the fields of what was drawn: a radius for a point, the head,
// tail and corridor for a route.
function showOpenDialog() {
  const where = state.pendingOpen;
  document.getElementById('new-radius-label').hidden = !where.at;
  document.getElementById('new-march-fields').hidden = !where.route;
  document.getElementById('new-incident-dialog').showModal();
}

// Metres along a line of [lat, lon] points (a sphere is close enough for a label).
function routeLength(points) {
  let metres = 0;
  for (let i = 1; i < points.length; i++) {
    const [lat1, lon1] = points[i - 1].map((degrees) => degrees * Math.PI / 180), [lat2, lon2] = points[i].map((degrees) => degrees * Math.PI / 180);
    const a = Math.sin((lat2 - lat1) / 2) ** 2 + Math.cos(lat1) * Math.cos(lat2) * Math.sin((lon2 - lon1) / 2) ** 2;
    metres += 2 * 6371008.8 * Math.asin(Math.sqrt(a));
  }
  return metres;
}
document.getElementById('new-cancel').addEventListener('click', () => document.getElementById('new-incident-dialog').close());
document.getElementById('new-incident-form').addEventListener('submit', (event) => {
  event.preventDefault();
  document.getElementById('new-incident-dialog').close();
  const where = state.pendingOpen;
  const number = (id) => Number(document.getElementById(id).value);
  const body = {kind: document.getElementById('new-kind').value};
  if (where.area) body.area = where.area;
  else if (where.route) {
    const march = {corridor_width_meters: number('new-width')};
    // The window's other settings go only when filled in: the server's defaults otherwise.
    for (const [id, setting] of windowFields) {
      if (document.getElementById(id).value.trim() !== '') march[setting] = number(id);
    }
    Object.assign(body, {route: where.route, head: {along_meters: number('new-head')}, tail: {along_meters: number('new-tail')}, march});
  } else Object.assign(body, {at: where.at, radius_meters: number('new-radius')});
  const title = document.getElementById('new-title').value.trim();
  if (title) body.title = title;
  if (where.parent) body.details = {parent: where.parent};
  act(async () => { const opened = await api('incident.open', body); state.selected = opened.incident.id; }, 'incident opened');
});
document.getElementById('redraw').addEventListener('click', () => {
  const march = state.snapshot && state.snapshot.incident.march;
  state.mapMode = march ? 'head' : 'redraw';
  say(march ? 'Click the map where the head of the march is now' : 'Click the map: the incident\'s new centre');
});
document.getElementById('move-tail').addEventListener('click', () => {
  if (!(state.snapshot && state.snapshot.incident.march)) return;
  state.mapMode = 'tail';
  say('Click the map where the tail of the march is now');
});
// The agencies that take part besides the lead (the fire service joining a public-order
// incident, say): they follow its channel and watch its cameras as their own grants allow.
document.getElementById('participants').addEventListener('click', () => {
  if (!state.snapshot) return;
  const current = (state.snapshot.incident.details.participants || []).join(', ');
  const answer = prompt('The agencies that take part besides the lead (their ids, separated by commas):', current);
  if (answer === null) return;
  const participants = answer.split(',').map((id) => id.trim()).filter((id) => id);
  act(() => api('incident.update', {incident: state.selected, participants}), 'agencies changed');
});
document.getElementById('close-incident').addEventListener('click', () => {
  if (state.selected && confirm('Close this incident? Its cameras and views end.')) {
    act(() => api('incident.close', {incident: state.selected}), 'incident closed');
  }
});

// MARK: Incidents

async function refreshIncidents() {
  try {
    state.incidents = (await api('incident.list')).incidents;
  } catch (error) { say(`incidents: ${error.code}`); return; }
  const list = document.getElementById('incidents');
  list.replaceChildren(...state.incidents.map((incident) => {
    const item = element('li');
    item.dataset.incident = String(incident.id);
    item.append(element('strong', `#${incident.id} `), element('span', incident.title || incident.kind), element('span', ` ${incident.kind} · ${incident.lead_agency}`, 'kind'));
    if (incident.id === state.selected) item.classList.add('selected');
    item.addEventListener('click', () => selectIncident(incident.id));
    return item;
  }));
  if (state.selected && !state.incidents.some((incident) => incident.id === state.selected)) {
    state.selected = null;
    state.snapshot = null;
    drawSelected();
  }
  drawIncidents();
}

function selectIncident(id) {
  state.selected = id;
  state.snapshot = null;
  refreshIncidents();
  refreshSelected();
}

// Every other live incident the agency takes part in, as a marker at its centre (the selected
// one is drawn in full): the room sees all of them at once, and a click chooses one.
function drawIncidents() {
  const layer = state.layers.incidents;
  if (!layer) return;
  layer.clearLayers();
  for (const incident of state.incidents || []) {
    if (incident.id === state.selected || !incident.center) continue;
    // Not passed on to the map, where a click may be placing a centre or a head.
    L.circleMarker([incident.center.lat, incident.center.lon], {radius: 9, color: '#ff7043', weight: 2, fillOpacity: 0.35, bubblingMouseEvents: false})
      .bindTooltip(textNode(`#${incident.id} ${incident.title || incident.kind} · ${incident.kind}, ${incident.lead_agency}`))
      .on('click', () => selectIncident(incident.id)).addTo(layer);
  }
  document.body.dataset.incidentMarkers = String(layer.getLayers().length);
}

// The selected incident's snapshot, and who is watching unless told not to (each reading of it
// is an audit entry: asked when the incident is chosen and when a view starts or stops).
async function refreshSelected({watchers = true} = {}) {
  if (!state.selected) { document.getElementById('incident').hidden = true; return; }
  const id = state.selected;
  try {
    const snapshot = await api('incident.snapshot', {incident: id});
    if (id !== state.selected) return;
    const changed = !state.snapshot || state.snapshot.incident.sequence !== snapshot.incident.sequence;
    state.snapshot = snapshot;
    if (changed) {
      const first = !state.drawn || state.drawn !== id;
      state.drawn = id;
      renderIncident();
      drawSelected();
      if (first) state.headPassed = null;
      if (snapshot.incident.march) refreshHeadPassed(id);
      if (first && state.layers.incident && state.layers.incident.getLayers().length) {
        state.map.fitBounds(L.featureGroup(state.layers.incident.getLayers()).getBounds().pad(0.5), {maxZoom: 17});
      }
    }
  } catch (error) { say(`incident ${id}: ${error.code}`); return; }
  if (watchers) await refreshWatchers(id);
}

// When the march's head passed each of its cameras the agency may see (what a replay offers).
async function refreshHeadPassed(id) {
  try {
    const passed = await api('incident.head-passed', {incident: id});
    if (id !== state.selected) return;
    state.headPassed = Object.fromEntries(passed.cameras.filter((camera) => camera.at).map((camera) => [camera.camera, camera.at]));
  } catch (error) { say(`incident ${id}: ${error.code}`); }
}

async function refreshWatchers(id) {
  try {
    const watching = await api('view.list', {incident: id});
    if (id !== state.selected) return;
    document.getElementById('watchers').replaceChildren(...watching.views.map((view) =>
      element('li', `${view.user || view.agency} (${view.agency}) · ${view.camera}${view.mode === 'playback' ? ' (replay)' : ''} · ${view.reason}`)));
  } catch (error) { say(`incident ${id}: ${error.code}`); }
}

function renderIncident() {
  const {incident, cameras} = state.snapshot;
  document.getElementById('incident').hidden = false;
  document.getElementById('incident-title').textContent = `#${incident.id} ${incident.title || incident.kind}`;
  const march = incident.march;
  const parent = incident.details && incident.details.parent;
  const children = state.snapshot.children || [];
  document.getElementById('incident-facts').textContent = `${incident.kind}, ${incident.status}, led by ${incident.lead_agency}` +
    (march ? `; head at ${Math.round(march.head_meters)} m, tail at ${Math.round(march.tail_meters)} m of ${Math.round(march.route_length_meters)} m`
      + (march.settings ? windowText(march.settings) : '')
      : `; ${Math.round(incident.radius_meters)} m around ${incident.center.lat.toFixed(5)}, ${incident.center.lon.toFixed(5)}`) +
    (incident.details.participants && incident.details.participants.length ? `; with ${incident.details.participants.join(', ')}` : '') +
    (parent ? `; split off #${parent}` : '') +
    (children.length ? `; groups split off: ${children.map((child) => `#${child}`).join(', ')}` : '');
  document.getElementById('split-off').hidden = !march;
  document.getElementById('share').hidden = !state.session.roles.includes('owner-admin');
  document.getElementById('redraw').textContent = march ? 'Move head…' : 'Redraw…';
  document.getElementById('redraw-area').hidden = Boolean(march);
  document.getElementById('move-tail').hidden = !march;
  const bySection = new Map();
  for (const camera of cameras) {
    const section = camera.section || 'selected';
    if (!bySection.has(section)) bySection.set(section, []);
    bySection.get(section).push(camera);
  }
  const table = element('table');
  for (const [section, members] of bySection) {
    const heading = table.insertRow();
    const cell = heading.insertCell();
    cell.colSpan = 3;
    cell.className = 'section';
    cell.textContent = `${section} (${members.length})`;
    for (const camera of members) {
      const row = table.insertRow();
      row.dataset.camera = camera.id;
      row.insertCell().textContent = camera.id;
      row.insertCell().textContent = camera.position ? `${Math.round(camera.distance_meters)} m` : `≤ ${Math.round(camera.distance_meters)} m`;
      const watch = element('button', '▶');
      watch.title = 'Watch live on the wall';
      watch.className = 'watch';
      watch.addEventListener('click', () => watchLive(camera.id));
      const still = element('button', '▣');
      still.title = 'Its thumbnail on the wall';
      still.className = 'thumbnail';
      still.addEventListener('click', () => watchThumbnail(camera.id));
      const back = element('button', '«');
      back.title = 'Replay its recorded footage on the wall';
      back.className = 'replay';
      back.addEventListener('click', () => replay(camera.id));
      row.insertCell().append(watch, still, back);
    }
  }
  document.getElementById('cameras').replaceChildren(cameras.length ? table : element('p', 'None that your agency may watch here.', 'kind'));
}

// The selected incident on the map: its circle or perimeter, a march's route with its head,
// tail and occupied stretch, and its cameras coloured by section.
function drawSelected() {
  const layer = state.layers.incident;
  if (!layer) return;
  layer.clearLayers();
  if (!state.snapshot) return;
  const {incident, cameras, area, route} = state.snapshot;
  if (route) {
    const line = route.coordinates.map(([lon, lat]) => [lat, lon]);
    L.polyline(line, {color: '#ffd54f', weight: 3, opacity: 0.6}).addTo(layer);
    const march = incident.march;
    if (march) {
      const head = pointAlong(line, march.head_meters), tail = pointAlong(line, march.tail_meters);
      L.polyline(stretch(line, march.tail_meters, march.head_meters), {color: '#e53935', weight: 7, opacity: 0.8}).addTo(layer);
      L.circleMarker(head, {radius: 8, color: '#e53935', fillOpacity: 1}).bindTooltip(textNode('head')).addTo(layer);
      L.circleMarker(tail, {radius: 6, color: '#1e88e5', fillOpacity: 1}).bindTooltip(textNode('tail')).addTo(layer);
    }
  } else if (area && area.type !== 'Point') {
    L.geoJSON(area, {style: () => ({color: '#ff7043', weight: 2, fillOpacity: 0.08})}).addTo(layer);
  } else {
    L.circle([incident.center.lat, incident.center.lon], {radius: incident.radius_meters, color: '#ff7043', weight: 2, fillOpacity: 0.08}).addTo(layer);
  }
  for (const camera of cameras) {
    if (!camera.position) continue;
    L.circleMarker([camera.position.lat, camera.position.lon], {radius: 5, color: sectionColours[camera.section] || '#ffee58', weight: 2, fillOpacity: 0.9})
      .bindTooltip(textNode(`${camera.id}${camera.section ? ' · ' + camera.section : ''}`))
      .on('click', () => watchLive(camera.id)).addTo(layer);
  }
}

function metres(a, b) {
  const rad = Math.PI / 180, dLat = (b[0] - a[0]) * rad, dLon = (b[1] - a[1]) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a[0] * rad) * Math.cos(b[0] * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * 6371008.8 * Math.asin(Math.sqrt(h));
}

function pointAlong(line, target) {
  let walked = 0;
  for (let i = 1; i < line.length; i++) {
    const step = metres(line[i - 1], line[i]);
    if (walked + step >= target) {
      const t = step > 0 ? (target - walked) / step : 0;
      return [line[i - 1][0] + t * (line[i][0] - line[i - 1][0]), line[i - 1][1] + t * (line[i][1] - line[i - 1][1])];
    }
    walked += step;
  }
  return line[line.length - 1];
}

function stretch(line, from, to) {
  const points = [pointAlong(line, from)];
  let walked = 0;
  for (let i = 1; i < line.length; i++) {
    walked += metres(line[i - 1], line[i]);
    if (walked > from && walked < to) points.push(line[i]);
  }
  points.push(pointAlong(line, to));
  return points;
}

// MARK: The wall

function buildWall() {
  const size = Number(document.getElementById('wall-size').value);
  const wall = document.getElementById('wall');
  for (const tile of state.tiles) tile.close();
  state.tiles = [];
  wall.className = size === 10 ? 'ten' : '';
  wall.replaceChildren(...Array.from({length: size}, () => element('div', null, 'tile empty')));
}
document.getElementById('wall-size').addEventListener('change', buildWall);

// A live tile: the justification asked for once per incident, then a link opened through the console.
// A tile of `camera`, live, or with `at` (ISO 8601) its recorded footage from that moment (a
// playback: decided and recorded as one, for the footage time).
async function watchLive(camera, at) {
  const incident = state.selected;
  if (!incident || !(await justified(incident))) return;
  const {reason, text} = state.justifications[incident];
  const asked = performance.now();
  let link;
  try {
    link = await api('feed.link', Object.assign({camera, justification: {reason, text, incident}}, at ? {at} : {}));
  } catch (error) {
    say(`${camera}: ${error.code}: ${error.message}`);
    return;
  }
  placeLiveTile(camera, link, asked, at);
}

// Replays a camera's footage from a moment the operator gives in seconds before now; for a
// march's camera the head has passed, from the moment it passed (incident.head-passed).
function replay(camera) {
  const passed = state.headPassed && state.headPassed[camera];
  const suggested = passed ? Math.max(1, Math.round((Date.now() - Date.parse(passed)) / 1000)) : 30;
  const answer = prompt(passed ? `The head passed ${camera} at ${new Date(passed).toLocaleTimeString()}. Replay from how many seconds ago?`
    : `Replay ${camera} from how many seconds ago?`, String(suggested));
  if (answer === null) return;
  const seconds = Number(answer);
  if (!(seconds > 0)) { say('Replay: give a number of seconds'); return; }
  watchLive(camera, new Date(Date.now() - seconds * 1000).toISOString());
}

// Whether the operator gave why they watch `incident` (asked once per incident, kept for its tiles).
async function justified(incident) {
  if (!state.justifications[incident]) {
    const justification = await askJustification();
    if (!justification) return false;
    state.justifications[incident] = justification;
  }
  return true;
}

function askJustification() {
  const dialog = document.getElementById('justify-dialog');
  document.getElementById('justify-text').value = '';
  return new Promise((resolve) => {
    const form = document.getElementById('justify-form'), cancel = document.getElementById('justify-cancel');
    const finish = (value) => { form.onsubmit = null; cancel.onclick = null; dialog.close(); resolve(value); };
    form.onsubmit = (event) => {
      event.preventDefault();
      const text = document.getElementById('justify-text').value.trim();
      if (text) finish({reason: document.getElementById('justify-reason').value, text});
    };
    cancel.onclick = () => finish(null);
    dialog.showModal();
  });
}

// A tile of the wall for `camera`: the first empty one, else the oldest gives way. `fill` puts
// the tile's picture in and returns how to stop it; the label and its close button are added.
function placeTile(camera, fill) {
  const wall = document.getElementById('wall');
  let slot = [...wall.children].find((tile) => tile.classList.contains('empty'));
  if (!slot) {
    const oldest = state.tiles.shift();
    oldest.close();
    slot = oldest.element;
  }
  slot.className = 'tile';
  for (const key of Object.keys(slot.dataset)) delete slot.dataset[key];
  slot.dataset.camera = camera;
  slot.replaceChildren();
  const label = element('div', null, 'label');
  const closeButton = element('button', '×');
  closeButton.title = 'Close this tile';
  label.append(element('span', camera), closeButton);
  const tile = {camera, element: slot, close: fill(slot, label)};
  closeButton.addEventListener('click', () => {
    tile.close();
    state.tiles = state.tiles.filter((other) => other !== tile);
    slot.className = 'tile empty';
    slot.replaceChildren();
    for (const key of Object.keys(slot.dataset)) delete slot.dataset[key];
  });
  state.tiles.push(tile);
}

// A picture refreshed every few seconds from `address` (a query string added to each request):
// each new one is loaded aside and shown once whole. Once one was shown, an address that has
// none any more (access ended, the camera down) takes the picture off the tile and says so.
function refreshedPicture(slot, label, address, note) {
  const picture = element('img');
  picture.alt = `thumbnail of ${slot.dataset.camera}`;
  slot.append(picture, label);
  const waiting = addNote(slot, 'Waiting for a thumbnail…', 'waiting');
  if (note) addNote(slot, note);
  let gone = null;
  const load = () => {
    const next = new Image();
    next.onload = () => {
      picture.src = next.src;
      picture.hidden = false;
      slot.dataset.thumbnail = 'shown';
      waiting.remove();
      if (gone) gone.remove();
      gone = null;
    };
    next.onerror = () => {
      if (slot.dataset.thumbnail !== 'shown') return;
      picture.removeAttribute('src');
      picture.hidden = true;
      slot.dataset.thumbnail = 'gone';
      if (!gone) gone = addNote(slot, 'No thumbnail now: access ended, or the camera is down');
    };
    next.src = `${address}${address.includes('?') ? '&' : '?'}t=${Date.now()}`;
  };
  load();
  const timer = setInterval(load, 2000);
  return () => clearInterval(timer);
}

// A note on a tile (why it shows nothing, what to do instead): a tile's notes stack at its
// bottom under its label, none over another, the newest first (a small tile cuts the oldest).
function addNote(slot, text, className) {
  let notes = slot.querySelector(':scope > .notes');
  if (!notes) {
    notes = element('div', null, 'notes');
    slot.append(notes);
  }
  const note = element('div', text, className ? `note ${className}` : 'note');
  notes.prepend(note);
  return note;
}

// A live tile from a link; `asked`: when the operator asked for it (after the justification).
function placeLiveTile(camera, link, asked, at) {
  placeTile(camera, (slot, label) => {
    if (at) {
      slot.dataset.replay = at;
      label.firstChild.textContent = `${camera} « ${new Date(at).toLocaleTimeString()}`;
    }
    if (link.stream && link.stream.codec && link.stream.codec !== 'h264') {
      // Browsers cannot play it (Chromium on Linux refuses H.265): the thumbnail, and the link.
      return refreshedPicture(slot, label, link.thumbnail_url, `${link.stream.codec.toUpperCase()}: a browser cannot play it. External player: ${link.url}`);
    }
    const video = element('video');
    video.muted = true;
    video.autoplay = true;
    video.playsInline = true;
    slot.append(video, label);
    // Behind the TLS proxy of docs/operations.md, the relay's /views/ are on the console's own origin.
    const address = new URL(link.url);
    const origin = location.protocol === 'https:' ? `wss://${location.host}` : `ws://${address.host}`;
    const socket = `${origin}${address.pathname.replace(/\/stream\.ts$/, '/live')}`;
    // The first picture shown: its delay since the operator asked, on the tile (read by the benchmark).
    const shown = () => { slot.dataset.firstPictureMs = String(Math.round(performance.now() - asked)); };
    if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(shown); else video.addEventListener('playing', shown, {once: true});
    return playLive(video, socket, (why) => {
      slot.dataset.ended = why;
      // No frozen last picture: the view, and perhaps the right to see the camera, has ended.
      video.hidden = true;
      addNote(slot, `View ended: ${why}`);
    });
  });
}

// A thumbnail tile: the camera's newest thumbnail as the agency receives it (thumbnails are
// asked for once per incident, with its justification, and recorded like a view).
async function watchThumbnail(camera) {
  const incident = state.selected;
  if (!incident || !(await justified(incident))) return;
  state.thumbnailsAsked = state.thumbnailsAsked || {};
  if (!state.thumbnailsAsked[incident]) {
    try {
      await api('thumbnails.start', {justification: Object.assign({incident}, state.justifications[incident])});
      state.thumbnailsAsked[incident] = true;
    } catch (error) { say(`thumbnails: ${error.code}: ${error.message}`); return; }
  }
  placeTile(camera, (slot, label) => refreshedPicture(slot, label, `/api/thumbnails/${encodeURIComponent(camera)}`));
}

// Plays fragmented MP4 from a WebSocket through Media Source Extensions, kept near live;
// returns how to stop it. `onEnd` is told why the relay closed it.
function playLive(video, url, onEnd) {
  const source = new MediaSource();
  video.src = URL.createObjectURL(source);
  const queue = [];
  let buffer = null, socket = null, stopped = false;
  let positioned = false;
  const pump = () => {
    // The stream's timestamps are the camera's: start where its first keyframe landed, at once.
    if (!positioned && buffer && !buffer.updating && video.buffered.length) {
      positioned = true;
      video.currentTime = video.buffered.start(0);
    }
    if (!buffer || buffer.updating || queue.length === 0 || source.readyState !== 'open') return;
    try { buffer.appendBuffer(queue.shift()); } catch (error) { queue.length = 0; }
  };
  const keepLive = setInterval(() => {
    if (!buffer || video.buffered.length === 0) return;
    const end = video.buffered.end(video.buffered.length - 1);
    if (end - video.currentTime > 1.0) video.currentTime = Math.max(video.buffered.start(video.buffered.length - 1), end - 0.2);
    if (!buffer.updating && video.currentTime - video.buffered.start(0) > 30) buffer.remove(0, video.currentTime - 10);
  }, 500);
  source.addEventListener('sourceopen', () => {
    socket = new WebSocket(url);
    socket.binaryType = 'arraybuffer';
    socket.onmessage = (event) => {
      const data = new Uint8Array(event.data);
      if (!buffer) {
        const codec = avcCodec(data);
        if (!codec) return;  // nothing before the first initialization segment
        buffer = source.addSourceBuffer(`video/mp4; codecs="${codec}"`);
        buffer.mode = 'sequence';
        buffer.addEventListener('updateend', pump);
      }
      queue.push(data);
      pump();
      if (video.paused) video.play().catch(() => {});
    };
    socket.onclose = (event) => {
      clearInterval(keepLive);
      if (!stopped) onEnd(event.reason || 'the relay closed it (grant revoked, incident closed, or the camera stopped)');
    };
  }, {once: true});
  return () => { stopped = true; clearInterval(keepLive); if (socket) socket.close(); video.removeAttribute('src'); };
}

// The codec string MSE needs, from an initialization segment's avcC box: avc1.PPCCLL.
function avcCodec(data) {
  for (let i = 4; i + 8 < data.length; i++) {
    if (data[i] === 0x61 && data[i + 1] === 0x76 && data[i + 2] === 0x63 && data[i + 3] === 0x43) {
      const hex = (value) => value.toString(16).padStart(2, '0');
      return `avc1.${hex(data[i + 5])}${hex(data[i + 6])}${hex(data[i + 7])}`;
    }
  }
  return null;
}

// MARK: Sharing: the grants the agency gives and receives; an owner's administrators share
// their cameras for an incident and take grants back (the bus decides who may, and records it).

async function refreshGrants() {
  let grants;
  try { grants = await api('grant.list'); } catch (error) { say(`grants: ${error.code}`); return; }
  const {agency, roles} = state.session;
  const administers = roles.includes('owner-admin');
  const now = Date.now();
  document.getElementById('grants').replaceChildren(...grants.map((grant) => {
    const ended = grant.revoked_at ? `revoked ${new Date(grant.revoked_at).toLocaleString()}`
      : grant.valid_until && Date.parse(grant.valid_until) <= now ? 'expired' : null;
    const item = element('li', `${grant.owner} → ${grant.agency}: ${grant.modes.join(', ')}, ${scopeText(grant.scope)}, ` +
      `${conditionText(grant.condition)}${grant.valid_until ? ` until ${new Date(grant.valid_until).toLocaleString()}` : ''}` +
      `${ended ? ` (${ended})` : ''} · ${grant.purpose}`);
    item.dataset.grant = grant.id;
    item.title = `${grant.id}: ${grant.legal_basis}`;
    if (ended) item.className = 'ended';
    if (!ended && administers && grant.owner === agency) {
      const revoke = element('button', 'Revoke…');
      revoke.type = 'button';
      revoke.addEventListener('click', () => {
        const reason = prompt(`Why do you take back ${grant.id} from ${grant.agency}? (recorded in the audit log)`);
        if (!reason || !reason.trim()) return;
        act(async () => { await api('grant.revoke', {grant: grant.id, reason: reason.trim()}); await refreshGrants(); }, `${grant.id} revoked`);
      });
      item.append(revoke);
    }
    return item;
  }));
}

function scopeText(scope) {
  const parts = [];
  if (scope.cameras) parts.push(`${scope.cameras.length} named cameras`);
  if (scope.kinds) parts.push(`${scope.kinds.join('/')} cameras`);
  if (scope.tag) parts.push(`tagged ${scope.tag}`);
  if (scope.place_types) parts.push(`at ${scope.place_types.join('/')}`);
  if (scope.area || scope.area_name) parts.push(`in ${scope.area_name || 'an area'}`);
  return parts.length ? parts.join(' ') : 'every camera';
}

// A time as the bus reads it: ISO 8601 in UTC, to the second.
function isoSeconds(date) {
  return date.toISOString().replace(/\.\d+Z$/, 'Z');
}

function conditionText(condition) {
  if (condition.incident) return `under incident #${condition.incident._0} only`;
  if (condition.while_incident_open) {
    const kinds = condition.while_incident_open.kinds;
    return `while ${kinds ? kinds.join('/') : 'any'} incidents that select them are open`;
  }
  return 'always';
}

document.getElementById('share').addEventListener('click', () => {
  if (!state.snapshot) return;
  const {incident} = state.snapshot;
  const agencies = [incident.lead_agency, ...(incident.details.participants || [])].filter((id) => id !== state.session.agency);
  document.getElementById('share-agencies').replaceChildren(...agencies.map((id) => { const option = element('option'); option.value = id; return option; }));
  document.getElementById('share-agency').value = agencies[0] || '';
  document.getElementById('share-what').textContent =
    `${state.session.agency}'s cameras that #${incident.id} ${incident.title || incident.kind} selects, only under it and while it is open.`;
  document.getElementById('share-dialog').showModal();
});
document.getElementById('share-cancel').addEventListener('click', () => document.getElementById('share-dialog').close());
document.getElementById('share-form').addEventListener('submit', () => {
  const incident = state.selected;
  const agency = document.getElementById('share-agency').value.trim();
  const modes = [['share-live', 'live'], ['share-playback', 'playback']].filter(([id]) => document.getElementById(id).checked).map(([, mode]) => mode);
  const kind = document.getElementById('share-kind').value;
  const until = document.getElementById('share-until').value;
  const grant = {
    id: `${state.session.agency}-i${incident}-${Date.now().toString(36)}`,
    owner: state.session.agency, agency, scope: kind ? {kinds: [kind]} : {}, modes,
    valid_from: isoSeconds(new Date()),
    purpose: document.getElementById('share-purpose').value.trim(),
    legal_basis: document.getElementById('share-legal-basis').value.trim(),
    condition: {incident: {_0: incident}},
  };
  if (until) grant.valid_until = isoSeconds(new Date(until));
  act(async () => { await api('grant.create', grant); await refreshGrants(); }, `shared with ${agency} for incident #${incident}`);
});

// MARK: The audit log (auditors)

document.getElementById('audit-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const camera = document.getElementById('audit-camera').value.trim();
  const user = document.getElementById('audit-user').value.trim();
  const incident = document.getElementById('audit-incident').value.trim();
  const body = {limit: 200};
  if (camera) body.camera = camera;
  if (user) body.user = user;
  if (incident) body.incident = Number(incident);
  say('searching the audit log…');
  try {
    const [found, verified] = await Promise.all([api('audit.query', body), api('audit.verify')]);
    document.getElementById('chain').textContent = verified.intact
      ? `Chain intact: ${verified.entries} entries` : `Chain BROKEN at ${verified.first_broken}: ${verified.problem}`;
    document.getElementById('audit-entries').replaceChildren(...found.entries.map((entry) => {
      const record = entry.record || {};
      return element('li', `${entry.sequence} ${record.at} ${record.action} ${record.agency || ''}/${record.user || ''}` +
        `${record.cameras ? ' ' + record.cameras.join(',') : ''}${record.incident ? ' #' + record.incident : ''}` +
        `${record.source ? ' via ' + record.source : ''}${record.justification ? ' «' + record.justification + '»' : ''}`);
    }));
    say(`audit log: ${found.entries.length} entries found${found.next_after ? ' (more after these)' : ''}`);
  } catch (error) { say(`audit: ${error.code}: ${error.message}`); }
});

boot();
