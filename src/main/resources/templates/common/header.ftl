<#-- First lines of every generated file: what it is and who generated it. -->
// sagejit generated kernel: ${specKey}
// generator ${generatorVersion}; template ${templateName}. Do not edit: regenerate.
