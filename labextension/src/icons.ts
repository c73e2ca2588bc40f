/** The panel's icons, themed through JupyterLab's icon classes. */
import { LabIcon } from '@jupyterlab/ui-components';

const PIPELINE_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <rect x="2" y="3" width="8" height="6" rx="1.5"/>
    <rect x="14" y="3" width="8" height="6" rx="1.5"/>
    <rect x="8" y="15" width="8" height="6" rx="1.5"/>
    <path d="M6 9v2.5c0 .8.7 1.5 1.5 1.5H11v2h2v-2h3.5c.8 0 1.5-.7 1.5-1.5V9h-2v2H8V9z"/>
  </g>
</svg>`;

/** Steps joined into a pipeline: the sidebar tab and the run views. */
export const pipelineIcon = new LabIcon({
  name: 'jupyter-mlk:pipeline',
  svgstr: PIPELINE_SVG
});
