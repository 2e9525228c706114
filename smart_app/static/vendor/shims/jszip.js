// jszip.min.js sets window.JSZip; dwv imports "jszip".
export default window.JSZip;
