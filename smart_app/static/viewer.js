// The imaging viewer: dwv (loaded without a bundler, see vendor/README.md) reading the study's
// series through the app's patient-scoped DICOMweb proxy, window/level presets, slice scrolling
// (wheel, buttons, arrow keys) and the AI finding drawn at its pixel on its slice.
import {App, AppOptions, Index, Point2D, ToolConfig, ViewConfig, WindowLevel} from 'dwv';

// Window presets in HU (centre, width): common chest CT settings (lung, mediastinum, bone).
const PRESETS = {lung: [-600, 1500], mediastinum: [50, 350], bone: [500, 2000]};
const ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1';
const T0 = performance.now();

const root = document.getElementById('viewer');
const status = document.getElementById('viewer-status');
const sliceLabel = document.getElementById('slice');
const overlay = document.getElementById('overlay');
const data = root.dataset;
const base = `/dicom-web/studies/${data.study}/series/${data.series}`;

const app = new App();
const options = new AppOptions({'*': [new ViewConfig('layerGroup0')]});
options.tools = {Scroll: new ToolConfig(), WindowLevel: new ToolConfig()};
app.init(options);

function controller() {
  const group = app.getActiveLayerGroup();
  const layer = group && group.getActiveViewLayer();
  return layer ? [layer, layer.getViewController()] : [undefined, undefined];
}

function sliceCount(vc) {
  const dataId = controller()[0].getDataId();
  return app.getData(dataId).image.getGeometry().getSize().get(2);
}

function setSlice(k) {
  const [, vc] = controller();
  if (!vc) return;
  const values = vc.getCurrentIndex().getValues();
  values[2] = Math.max(0, Math.min(sliceCount(vc) - 1, k));
  vc.setCurrentIndex(new Index(values));
}

function currentSlice() {
  const [, vc] = controller();
  return vc ? vc.getCurrentIndex().get(2) : 0;
}

function findingSlice() {
  const [layer] = controller();
  if (!layer || !data.findingSop) return undefined;
  const image = app.getData(layer.getDataId()).image;
  const n = image.getGeometry().getSize().get(2);
  for (let k = 0; k < n; k += 1) {
    const values = [0, 0, k];
    if (image.getImageUid(new Index(values)) === data.findingSop) return k;
  }
  return undefined;
}

function drawFinding() {
  const [layer] = controller();
  const k = findingSlice();
  sliceLabel.textContent = `Slice ${currentSlice() + 1}`;
  if (!layer || k === undefined || data.findingPresent !== 'true' || currentSlice() !== k) {
    overlay.hidden = true;
    return;
  }
  // dwv's plane positions are in pixel units of the slice (display = (index - offset) * zoom)
  const col = Number(data.findingCol) + 0.5;
  const row = Number(data.findingRow) + 0.5;
  const shown = layer.planePosToDisplay(new Point2D(col, row));
  const pos = {x: shown.getX(), y: shown.getY()};
  if (pos.x === undefined || pos.y === undefined) {
    overlay.hidden = true;
    return;
  }
  const prob = Number(data.findingProbability || 0).toFixed(2);
  overlay.style.left = `${pos.x}px`;
  overlay.style.top = `${pos.y}px`;
  overlay.textContent = '';
  const label = document.createElement('span');
  label.textContent = `${data.findingLabel || 'finding'} p=${prob} (${data.findingModel || ''})`;
  overlay.appendChild(label);
  overlay.dataset.x = String(pos.x);
  overlay.dataset.y = String(pos.y);
  overlay.hidden = false;
}

function preset(name) {
  const [, vc] = controller();
  const wl = PRESETS[name];
  if (vc && wl) vc.setWindowLevel(new WindowLevel(wl[0], wl[1]));
  root.dataset.preset = name;
}

let firstFrame = false;
app.addEventListener('renderend', () => {
  if (!firstFrame) {
    firstFrame = true;
    root.dataset.firstFrameMs = String(performance.now() - T0);
  }
});
app.addEventListener('positionchange', drawFinding);
app.addEventListener('error', (event) => {
  console.error('dwv error', event.error && event.error.stack, event.source);
  status.textContent = `The images could not be loaded: ${event.error || event.message || 'error'}`;
  root.dataset.error = '1';
});
app.addEventListener('load', () => {
  app.setTool('Scroll');
  preset('lung');
  const k = findingSlice();
  if (k !== undefined) setSlice(k);
  drawFinding();
  status.textContent = `Loaded ${sliceCount()} slices.`;
  root.dataset.ready = '1';
  root.dataset.loadedMs = String(performance.now() - T0);
});

document.querySelectorAll('[data-preset]').forEach((b) => {
  b.addEventListener('click', () => preset(b.dataset.preset));
});
document.querySelectorAll('[data-step]').forEach((b) => {
  b.addEventListener('click', () => setSlice(currentSlice() + Number(b.dataset.step)));
});
root.addEventListener('keydown', (event) => {
  const step = {ArrowUp: -1, ArrowDown: 1, PageUp: -5, PageDown: 5}[event.key];
  if (step) {
    event.preventDefault();
    setSlice(currentSlice() + step);
  }
  const key = {l: 'lung', m: 'mediastinum', b: 'bone'}[event.key];
  if (key) preset(key);
});

// The whole series in one multipart WADO-RS answer (dwv sizes its volume by the parts), asked
// for at once: the proxy checks the study's patient on this very request.
app.loadURLs([base], {requestHeaders: [{name: 'Accept', value: ACCEPT}], withCredentials: true});

// For tests and the benchmark: read-only views of the viewer's state.
window.cdssViewer = {app, currentSlice, findingSlice, drawFinding};
