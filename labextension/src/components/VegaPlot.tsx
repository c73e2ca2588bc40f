/**
 * A Vega-Lite spec drawn by JupyterLab's own vega renderer (the mime
 * renderer of `@jupyterlab/vega5-extension`), through the render registry.
 */
import { IRenderMimeRegistry, MimeModel } from '@jupyterlab/rendermime';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';
import React, { useEffect, useRef, useState } from 'react';

import { VEGALITE_MIME } from '../plots';
import { JSONValue } from '../tokens';

export function VegaPlot(props: {
  spec: { [key: string]: JSONValue };
  rendermime: IRenderMimeRegistry | null;
  trans: TranslationBundle;
  className?: string;
}): JSX.Element {
  const { spec, rendermime, trans } = props;
  const host = useRef<HTMLDivElement>(null);
  const [failed, setFailed] = useState<string | null>(null);
  const canRender =
    !!rendermime &&
    rendermime.preferredMimeType({ [VEGALITE_MIME]: {} }, 'any') ===
      VEGALITE_MIME;
  const text = JSON.stringify(spec);
  // The renderer picks its Vega theme from the page's when it draws.
  const light = useThemeLight();

  useEffect(() => {
    if (!canRender || !host.current) {
      return;
    }
    const renderer = rendermime!.createRenderer(VEGALITE_MIME);
    const model = new MimeModel({
      data: { [VEGALITE_MIME]: JSON.parse(text) },
      trusted: true
    });
    Widget.attach(renderer, host.current);
    renderer
      .renderModel(model)
      .then(() => setFailed(null))
      .catch(error => setFailed(String(error)));
    return () => {
      if (renderer.isAttached) {
        Widget.detach(renderer);
      }
      renderer.dispose();
    };
  }, [text, canRender, light]);

  if (!canRender) {
    return (
      <div className="jp-Mlk-empty">
        {trans.__(
          'Plots need JupyterLab’s Vega renderer (@jupyterlab/vega5-extension), which is disabled.'
        )}
      </div>
    );
  }
  return (
    <div className={`jp-Mlk-plot ${props.className ?? ''}`}>
      <div ref={host} />
      {failed && <div className="jp-Mlk-fieldError">{failed}</div>}
    </div>
  );
}

/** Whether JupyterLab's theme is light; changes when the user switches. */
function useThemeLight(): boolean {
  const read = () => document.body.dataset.jpThemeLight !== 'false';
  const [light, setLight] = useState(read);
  useEffect(() => {
    const observer = new MutationObserver(() => setLight(read()));
    observer.observe(document.body, {
      attributes: true,
      attributeFilter: ['data-jp-theme-light']
    });
    return () => observer.disconnect();
  }, []);
  return light;
}
