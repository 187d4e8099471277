package dev.sagejit.codegen;

import freemarker.cache.URLTemplateLoader;
import freemarker.template.Configuration;
import freemarker.template.TemplateException;
import freemarker.template.TemplateExceptionHandler;
import java.io.IOException;
import java.io.StringWriter;
import java.net.URL;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Renders CUDA C++ from the FreeMarker templates under {@code /templates} on the classpath. The
 * model is a flat map of numbers, booleans and strings computed in Java; templates make no decisions
 * of their own. Thread-safe: one renderer can serve every thread.
 */
public final class TemplateRenderer {
    private final Configuration config;

    public TemplateRenderer() {
        config = new Configuration(Configuration.VERSION_2_3_34);
        config.setTemplateLoader(new OwnResources());
        config.setDefaultEncoding("UTF-8");
        config.setTemplateExceptionHandler(TemplateExceptionHandler.RETHROW_HANDLER);
        config.setLogTemplateExceptions(false);
        config.setWrapUncheckedExceptions(true);
        config.setFallbackOnNullLoopVariable(false);
        // Numbers must render as C literals: no grouping separators, no locale.
        config.setNumberFormat("computer");
        config.setBooleanFormat("c");
        config.setLocale(java.util.Locale.ROOT);
    }

    /**
     * Finds templates as resources of sagejit itself. In the dev.sagejit module the template folders
     * count as packages ({@code templates.attn.fwd}, ...), whose resources only the module's own code
     * may look up: FreeMarker's ClassTemplateLoader would look them up from the freemarker module and
     * find nothing. On the class path both work.
     */
    private static final class OwnResources extends URLTemplateLoader {
        @Override
        protected URL getURL(String name) {
            return TemplateRenderer.class.getResource("/templates/" + name);
        }
    }

    /**
     * Renders {@code template} (a path under /templates) with the given model, to which the
     * generator version and the template name are added for the file header.
     */
    public String render(String template, Map<String, Object> model) {
        var full = new LinkedHashMap<String, Object>(model);
        full.put("generatorVersion", GeneratorVersion.VALUE);
        full.put("templateName", template);
        try {
            var out = new StringWriter();
            config.getTemplate(template).process(full, out);
            return out.toString();
        } catch (IOException | TemplateException e) {
            throw new IllegalStateException("rendering template " + template + " failed: " + e.getMessage()
                    + " (a template bug: the model is " + full.keySet() + ")", e);
        }
    }
}
